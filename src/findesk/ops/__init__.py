"""Operating findesk: health, readiness and Prometheus metrics."""
