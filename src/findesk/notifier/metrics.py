"""Prometheus metrics of the notifier, in the shared registry (rendered at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from findesk.kit.metrics import REGISTRY

EVENTS_RECORDED = Counter(
    "findesk_outbox_events_recorded",
    "Sync events recorded for Fin (committed).",
    registry=REGISTRY,
)
EVENTS_DELIVERED = Counter(
    "findesk_outbox_events_delivered",
    "Sync events whose conversation was delivered to Fin.",
    registry=REGISTRY,
)
EVENTS_DEAD = Counter(
    "findesk_outbox_events_dead",
    "Sync events moved to dead-letter.",
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "findesk_outbox_deliveries",
    "Webhook calls to Fin, by outcome (delivered, retry, dead).",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "findesk_outbox_delivery_latency_seconds",
    "From the oldest coalesced event's commit to Fin's answer.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400),
    registry=REGISTRY,
)
TYPING_SENT = Counter(
    "findesk_typing_events",
    "Typing events sent to Fin, by outcome (sent, failed, throttled, dropped).",
    ["outcome"],
    registry=REGISTRY,
)
