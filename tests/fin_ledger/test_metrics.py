"""What ``/metrics`` says of the Fin API and its ledger: latency histograms per operation and
status class, the records dropped when the buffer is full, and the human replies Fin has not
fetched within the alert window (computed from the database at scrape time).

The counters live in the process, shared by every server a test run starts: tests compare
before and after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_support import metric, scrape, until
from sqlalchemy import func, select
from starlette.requests import Request
from support.server import LiveServer, database_url

from findesk.fin_ledger.calls import FinLedger
from findesk.fin_ledger.models import FinCall
from findesk.kit.db import Database
from findesk.kit.metrics import REGISTRY

DURATION = "findesk_fin_api_request_duration_seconds_count"
ALERT_SECONDS = 1.0


def test_latency_histograms_per_operation_and_status_class(server: LiveServer) -> None:
    fin = server.fin_world()
    conversation, _ = fin.conversation()
    before = scrape(server)
    for _ in range(3):
        assert fin.api.get_messages(conversation["id"]).ok
    assert fin.api.get_conversation("conv_nosuchconversation").status == 404
    after = scrape(server)

    def delta(operation: str, status_class: str) -> float:
        labels = {"operation": operation, "status_class": status_class}
        return metric(after, DURATION, **labels) - metric(before, DURATION, **labels)

    assert delta("get_messages", "2xx") == 3
    assert delta("get_conversation", "4xx") == 1
    assert delta("get_conversation", "2xx") == 0
    buckets = [line for line in after.splitlines() if line.startswith(DURATION[:-6] + "_bucket")]
    assert any('operation="get_messages"' in line for line in buckets)


def test_a_full_buffer_drops_calls_and_counts_them(server: LiveServer) -> None:
    def dropped() -> float:
        value = REGISTRY.get_sample_value(
            "findesk_fin_ledger_records_dropped_total", {"reason": "buffer_full"}
        )
        return value or 0.0

    ledger = FinLedger(enabled=True, capacity=3)
    before = dropped()
    for status in (200, 201, 202, 203, 204):
        ledger.observe("get_user", Request({"type": "http"}), status, 0.001)
    assert dropped() - before == 2
    assert [record.status_code for record in ledger.buffer.drain()] == [200, 201, 202]
    ledger.observe("get_user", Request({"type": "http"}), 200, 0.001)  # room again
    assert len(ledger.buffer) == 1 and dropped() - before == 2
    scraped = metric(
        scrape(server), "findesk_fin_ledger_records_dropped_total", reason="buffer_full"
    )
    assert scraped >= 2


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def alerting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server of its own (the gauges count every reply in it), with a one-second window."""
    url = database_url(request.param, request, tmp_path_factory.mktemp("alert"))
    live = LiveServer(url, {"fin_fetch_alert_seconds": ALERT_SECONDS}).start()
    yield live
    live.stop()


def test_replies_fin_has_not_fetched_in_the_window_are_counted(alerting: LiveServer) -> None:
    fin = alerting.fin_world()
    conversation, _ = fin.conversation()
    cid = conversation["id"]
    with alerting.agent_http(f"a-{uuid.uuid4().hex[:6]}@example.com") as agent:
        reply = agent.post(f"/conversations/{cid}/messages", json={"body": "<p>Hi</p>"})
        assert reply.status_code == 201

    def unfetched() -> float:
        return metric(scrape(alerting), "findesk_fin_unfetched_replies")

    until(lambda: unfetched() == 1, "the reply counted as unfetched")
    oldest = metric(scrape(alerting), "findesk_fin_oldest_unfetched_reply_age_seconds")
    assert oldest >= ALERT_SECONDS

    assert fin.api.get_messages(cid).ok  # Fin fetches it at last
    until(lambda: unfetched() == 0, "the reply no longer counted")
    assert metric(scrape(alerting), "findesk_fin_oldest_unfetched_reply_age_seconds") == 0


def test_with_the_ledger_off_nothing_is_recorded_but_latency_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'off.db'}"
    live = LiveServer(url, {"fin_ledger_enabled": False}).start()
    try:
        fin = live.fin_world()
        conversation, _ = fin.conversation()
        before = scrape(live)
        assert fin.api.get_messages(conversation["id"]).ok
        after = scrape(live)
        labels = {"operation": "get_messages", "status_class": "2xx"}
        assert metric(after, DURATION, **labels) - metric(before, DURATION, **labels) == 1
        assert "findesk_fin_unfetched_replies" not in after  # no receipts, so no alert
    finally:
        live.stop()  # the recorder writes whatever is buffered as the server stops
    db = Database(url)
    try:
        with db.read_session() as session:
            assert session.scalar(select(func.count()).select_from(FinCall)) == 0
    finally:
        db.dispose()
