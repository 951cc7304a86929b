"""Prometheus metrics of the Fin API and its ledger (the shared registry, ``/metrics``).

The unfetched-reply gauges are read from the database at scrape time (``ops.endpoints``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from findesk.kit.metrics import REGISTRY

FIN_API_DURATION = Histogram(
    "findesk_fin_api_request_duration_seconds",
    "Time findesk took to answer Fin's API calls, by operation and status class (2xx, 4xx, 5xx).",
    ["operation", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
LEDGER_DROPPED = Counter(
    "findesk_fin_ledger_records_dropped",
    "Fin API calls left out of the ledger: buffer_full (calls came faster than the recorder "
    "wrote them) or write_failed (the database refused a batch).",
    ["reason"],
    registry=REGISTRY,
)
LEDGER_RECORDED = Counter(
    "findesk_fin_ledger_records_written",
    "Fin API calls written to the ledger.",
    registry=REGISTRY,
)
RECEIPTS = Counter(
    "findesk_fin_receipts",
    "Human replies marked as fetched by Fin (their first get_messages).",
    registry=REGISTRY,
)
