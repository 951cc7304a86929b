"""The process's Prometheus registry: every domain registers its metrics here, and ``/metrics``
renders it (with the gauges computed from the database at scrape time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)
