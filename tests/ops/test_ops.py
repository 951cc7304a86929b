"""Operating findesk: health, readiness, and Prometheus metrics that reflect the notifier."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from support import aio
from support.receiver import Receiver, eventually, notifier_settings
from support.server import LiveServer

from findesk.app import create_app
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade

METRICS_TOKEN = "scrape-me"


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('ops') / 'findesk.db'}"
    live = LiveServer(url, notifier_settings(receiver)).start()
    yield live
    live.stop()


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_healthz_and_readyz(ops: LiveServer) -> None:
    assert httpx.get(f"{ops.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{ops.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "notifier": "running"}


def test_readyz_says_when_workers_run_apart(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    live = LiveServer(url, {"notifier_in_process": False}).start()
    try:
        assert httpx.get(f"{live.base_url}/readyz").json()["notifier"] == "external"
    finally:
        live.stop()


def test_metrics_follow_recorded_and_delivered_events(ops: LiveServer, receiver: Receiver) -> None:
    before = httpx.get(f"{ops.base_url}/metrics").text
    conversation, _ = ops.fin_world().conversation()
    with ops.agent_http(f"m-{uuid.uuid4().hex[:6]}@example.com") as agent:
        for title in ("one", "two", "three"):
            agent.patch(f"/conversations/{conversation['id']}", json={"title": title})
    assert receiver.wait_until(
        lambda got: any(r.conversation_id == conversation["id"] for r in got)
    )

    def scraped() -> str:
        return httpx.get(f"{ops.base_url}/metrics").text

    assert eventually(
        lambda: metric(scraped(), "findesk_outbox_queue_depth", '{state="pending"}') == 0
    )
    after = scraped()
    assert (
        metric(after, "findesk_outbox_events_recorded_total")
        - metric(before, "findesk_outbox_events_recorded_total")
        == 3
    )
    assert (
        metric(after, "findesk_outbox_events_delivered_total")
        - metric(before, "findesk_outbox_events_delivered_total")
        == 3
    )
    assert metric(after, "findesk_outbox_deliveries_total", '{outcome="delivered"}') > metric(
        before, "findesk_outbox_deliveries_total", '{outcome="delivered"}'
    )
    assert metric(after, "findesk_outbox_delivery_latency_seconds_count") > metric(
        before, "findesk_outbox_delivery_latency_seconds_count"
    )
    # The queue: what waits and what was given up on; delivered events are counted above.
    assert 'findesk_outbox_queue_depth{state="dead"} 0.0' in after
    assert 'findesk_outbox_queue_depth{state="delivered"}' not in after
    assert "findesk_outbox_oldest_pending_age_seconds 0.0" in after


def scrape_from(app: object, client: tuple[str, int], headers: dict[str, str]) -> int:
    """One /metrics call through the ASGI interface, as if from ``client``'s address."""

    async def call() -> int:
        transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://findesk") as http:
            return (await http.get("/metrics", headers=headers)).status_code

    return aio.run(call)


def test_metrics_need_loopback_or_the_token(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    remote, local = ("203.0.113.9", 40000), ("127.0.0.1", 40000)
    try:
        open_app = create_app(Settings(database_url=url), db)
        assert scrape_from(open_app, remote, {}) == 403
        assert scrape_from(open_app, local, {}) == 200

        guarded = create_app(Settings(database_url=url, metrics_token=METRICS_TOKEN), db)
        assert scrape_from(guarded, remote, {}) == 401
        assert scrape_from(guarded, local, {}) == 401  # with a token, loopback needs it too
        assert scrape_from(guarded, remote, {"Authorization": "Bearer nope"}) == 401
        assert scrape_from(guarded, remote, {"Authorization": f"Bearer {METRICS_TOKEN}"}) == 200
    finally:
        db.dispose()
