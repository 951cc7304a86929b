"""The API documentation pages, served from the package (no CDN, strict CSP)."""
