"""``/healthz`` (the process answers), ``/readyz`` (it can serve: database and notifier) and
``/metrics`` (Prometheus; a bearer token, or loopback clients only when none is configured)."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from findesk.fin_ledger import service as fin_ledger
from findesk.kit.errors import Forbidden, Unauthorized
from findesk.kit.http import client_address, db_of, problem_response, settings_of
from findesk.kit.metrics import REGISTRY
from findesk.notifier import service as outbox

router = APIRouter(tags=["Operations"], include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with db_of(request).read_session() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", with the reason
        checks["database"] = f"error: {type(exc).__name__}"
    task = getattr(request.app.state, "worker_task", None)
    if task is None:
        checks["notifier"] = "external"  # delivered by `findesk worker` processes
    else:
        checks["notifier"] = "error: stopped" if task.done() else "running"
    ready = all(not value.startswith("error") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


class _OutboxCollector(Collector):
    def __init__(self, status: outbox.OutboxStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "findesk_outbox_queue_depth",
            "Outbox events waiting (pending) or given up on (dead), by state.",
            labels=["state"],
        )
        for state, count in sorted(self.status.counts.items()):
            depth.add_metric([state], count)
        yield depth
        yield GaugeMetricFamily(
            "findesk_outbox_oldest_pending_age_seconds",
            "Age of the oldest event still waiting to reach Fin (0 when none).",
            value=self.status.oldest_pending_age_seconds or 0.0,
        )


class _UnfetchedCollector(Collector):
    def __init__(self, unfetched: fin_ledger.Unfetched) -> None:
        self.unfetched = unfetched

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "findesk_fin_unfetched_replies",
            "Human public replies that Fin has not fetched within FINDESK_FIN_FETCH_ALERT_SECONDS.",
            value=self.unfetched.overdue,
        )
        yield GaugeMetricFamily(
            "findesk_fin_oldest_unfetched_reply_age_seconds",
            "Age of the oldest human public reply that Fin has not fetched (0 when none).",
            value=self.unfetched.oldest_age_seconds,
        )


def _check_scraper(request: Request) -> None:
    token = settings_of(request).metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise Unauthorized("A valid metrics token is required.")
        return
    host = client_address(request) or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise Forbidden("Set FINDESK_METRICS_TOKEN to scrape metrics from other hosts.")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    try:
        _check_scraper(request)
    except (Unauthorized, Forbidden) as exc:
        return problem_response(exc)
    settings = settings_of(request)
    with db_of(request).read_session() as session:
        status = outbox.status(session, delivered=False)
        unfetched = (
            fin_ledger.unfetched(session, timedelta(seconds=settings.fin_fetch_alert_seconds))
            if settings.fin_ledger_enabled  # no receipts are written: nothing to alert on
            else None
        )
    live = CollectorRegistry()
    live.register(_OutboxCollector(status))
    if unfetched is not None:
        live.register(_UnfetchedCollector(unfetched))
    return Response(
        generate_latest(REGISTRY) + generate_latest(live), media_type=CONTENT_TYPE_LATEST
    )
