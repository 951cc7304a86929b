"""Outbound webhooks on handover and assignment, through the outbox, against a real receiver on
loopback: Standard Webhooks signatures (verified here as a receiver would), the same
``webhook-id`` on every attempt across an outage, dead-letter after the retry window and replay,
the Slack format, and the refusal of private addresses. Fin's own webhook is not configured
here: alerts go while Fin's events wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from support.alerts import agent_client, verify_standard_webhook
from support.fin import World
from support.receiver import Attempt, Receiver, eventually
from support.server import LiveServer, database_url

from findesk.alerts import service as alerts
from findesk.conversations import service as conversations
from findesk.kit import urlguard
from findesk.notifier import service as outbox
from findesk.notifier.models import OutboxEvent

WINDOW_SECONDS = 3.0
HANDED_OVER, ASSIGNED = "conversation.handed_over", "conversation.assigned"


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    receiver = Receiver().accept()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory, hooks) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    settings = {
        "webhooks_allow_loopback": True,
        "notifier_backoff_base_seconds": 0.05,
        "notifier_backoff_max_seconds": 0.2,
        "notifier_retry_window_seconds": WINDOW_SECONDS,
        "notifier_poll_seconds": 0.2,
    }
    live = LiveServer(url, settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with agent_client(server, "Ada Admin", role="admin") as client:
        yield client


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with agent_client(server, "Alice Agent") as client:
        yield client


@pytest.fixture(scope="module")
def fin(server: LiveServer) -> World:
    return server.fin_world()


def register(admin: httpx.Client, hooks: Receiver, path: str, events: list[str], fmt: str) -> str:
    response = admin.post(
        "/webhooks", json={"url": f"{hooks.url}{path}", "events": events, "format": fmt}
    )
    assert response.status_code == 201, response.text
    secret = str(response.json()["secret"])
    assert secret.startswith("whsec_")
    return secret


def handed_over(fin: World, title: str = "Refund for order 1042") -> str:
    conversation, _ = fin.conversation(assignee_id=fin.fin_agent_id, title=title)
    fin.hand_over(conversation["id"])
    return str(conversation["id"])


def hits(hooks: Receiver, path: str, event: str, conversation_id: str) -> list[Attempt]:
    return [
        a
        for a in list(hooks.log)
        if a.path == path
        and a.body.get("type") == event
        and (a.body.get("data") or {}).get("conversation_id") == conversation_id
    ]


def test_handover_and_assignment_arrive_signed(server, admin, alice, fin, hooks) -> None:
    path = f"/json-{server.port}"
    secret = register(
        admin, hooks, path, ["conversation.handed_over", "conversation.assigned"], "json"
    )
    listed = admin.get("/webhooks").json()
    assert [e["url"] for e in listed] == [f"{hooks.url}{path}"]
    assert all("secret" not in e for e in listed)  # shown once, never again
    with server.db.transaction() as session:  # and not kept: derived from the server's key
        stored = repr(session.execute(text("SELECT * FROM webhook_endpoints")).all())
    assert secret.removeprefix("whsec_") not in stored

    conversation_id = handed_over(fin)
    assert hooks.wait_for(
        lambda _: bool(hits(hooks, path, "conversation.handed_over", conversation_id))
    )
    hit = hits(hooks, path, "conversation.handed_over", conversation_id)[0]
    verify_standard_webhook(secret, hit.headers, hit.raw)
    assert hit.headers["webhook-id"].startswith("msg_")
    assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 60
    data = hit.body["data"]
    assert data["title"] == "Refund for order 1042"
    assert data["assignee"] is None
    assert data["url"] == f"{server.base_url}/inbox/conversations/{conversation_id}"

    # An admin gives it to Alice: the assignment event names her.
    response = admin.patch(
        f"/conversations/{conversation_id}", json={"assignee_id": alice.agent_id}
    )
    assert response.status_code == 200, response.text
    assert hooks.wait_for(
        lambda _: bool(hits(hooks, path, "conversation.assigned", conversation_id))
    )
    hit = hits(hooks, path, "conversation.assigned", conversation_id)[0]
    verify_standard_webhook(secret, hit.headers, hit.raw)
    assert hit.body["data"]["assignee"]["id"] == alice.agent_id
    assert hit.body["data"]["assigned_by"] == admin.agent_id  # type: ignore[attr-defined]


def test_only_admins_manage_webhooks(server, alice, hooks) -> None:
    response = alice.post("/webhooks", json={"url": hooks.url, "events": ["conversation.assigned"]})
    assert response.status_code == 403
    assert alice.get("/webhooks").status_code == 403


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3/hook", "http://169.254.169.254/latest", "http://[fd00::1]/x", "ftp://a.b/"],
)
def test_private_addresses_are_refused(server, admin, url) -> None:
    response = admin.post("/webhooks", json={"url": url, "events": ["conversation.assigned"]})
    assert response.status_code == 422, response.text


def test_loopback_needs_the_setting() -> None:
    with pytest.raises(urlguard.RefusedURL):
        urlguard.check("http://127.0.0.1:9/hook", allow_loopback=False)
    urlguard.check("http://127.0.0.1:9/hook", allow_loopback=True)


def test_outage_is_retried_with_a_stable_webhook_id(server, admin, fin, hooks) -> None:
    path = f"/outage-{server.port}"
    secret = register(admin, hooks, path, ["conversation.handed_over"], "json")
    hooks.respond(503)
    try:
        conversation_id = handed_over(fin)
        assert hooks.wait_for(
            lambda _: len(hits(hooks, path, "conversation.handed_over", conversation_id)) >= 3
        )
    finally:
        hooks.respond(200)
    assert hooks.wait_for(
        lambda _: any(
            a.status == 200 for a in hits(hooks, path, "conversation.handed_over", conversation_id)
        )
    )
    attempts = hits(hooks, path, "conversation.handed_over", conversation_id)
    assert {a.headers["webhook-id"] for a in attempts} == {attempts[0].headers["webhook-id"]}
    assert [a.status for a in attempts][-1] == 200 and attempts[0].status == 503
    for attempt in attempts:  # each attempt signed afresh, all verifiable
        verify_standard_webhook(secret, attempt.headers, attempt.raw)


def _webhook_rows(server: LiveServer, message_id: str | None = None) -> list[OutboxEvent]:
    with server.db.read_session() as session:
        query = select(OutboxEvent).where(OutboxEvent.kind == "webhook")
        if message_id:
            query = query.where(OutboxEvent.conversation_id == message_id)
        return list(session.scalars(query))


def test_dead_letter_after_the_window_then_replay(server, admin, fin, hooks) -> None:
    path = f"/dead-{server.port}"
    register(admin, hooks, path, ["conversation.handed_over"], "json")
    hooks.respond(503)
    try:
        conversation_id = handed_over(fin)
        assert hooks.wait_for(
            lambda _: bool(hits(hooks, path, "conversation.handed_over", conversation_id))
        )
        message_id = hits(hooks, path, "conversation.handed_over", conversation_id)[0].headers[
            "webhook-id"
        ]
        assert eventually(
            lambda: [r.state for r in _webhook_rows(server, message_id)] == ["dead"],
            timeout=WINDOW_SECONDS + 20,
        )
    finally:
        hooks.respond(200)
    failed = hits(hooks, path, "conversation.handed_over", conversation_id)
    assert failed and all(a.status == 503 for a in failed)

    # `findesk outbox replay --dead`: delivered at last, under the same webhook-id.
    with server.db.transaction() as session:
        assert outbox.replay(session, dead=True, conversation_id=None) >= 1
    assert hooks.wait_for(
        lambda _: any(
            a.status == 200 for a in hits(hooks, path, "conversation.handed_over", conversation_id)
        )
    )
    done = [a for a in hits(hooks, path, "conversation.handed_over", conversation_id)]
    assert done[-1].headers["webhook-id"] == message_id
    assert eventually(lambda: [r.state for r in _webhook_rows(server, message_id)] == ["delivered"])


def test_slack_format(server, admin, fin, hooks) -> None:
    path = f"/slack-{server.port}"
    secret = register(admin, hooks, path, ["conversation.handed_over"], "slack")
    conversation, _ = fin.conversation(
        assignee_id=fin.fin_agent_id, title="Refund <!channel> & <https://evil.example|click>"
    )
    conversation_id = str(conversation["id"])
    fin.hand_over(conversation_id)
    link = f"{server.base_url}/inbox/conversations/{conversation_id}"

    def slack_hits() -> list[Attempt]:
        return [a for a in list(hooks.log) if a.path == path and link in str(a.body)]

    assert hooks.wait_for(lambda _: bool(slack_hits()))
    hit = slack_hits()[0]
    verify_standard_webhook(secret, hit.headers, hit.raw)
    body: dict[str, Any] = hit.body
    assert set(body) == {"text", "blocks"}
    assert body["text"] == (
        f"Fin handed over a conversation: <{link}|Refund &lt;!channel&gt; &amp; "
        "&lt;https://evil.example|click&gt;>"
    )
    assert body["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}]


def test_the_sla_code_can_raise_a_breach(server, admin, fin, hooks) -> None:
    """``alerts.service.raise_sla_breach``, as the SLA code will call it in the transaction
    that records a breach: the ``sla.breached`` webhook goes out, signed."""
    path = f"/sla-{server.port}"
    secret = register(admin, hooks, path, ["sla.breached"], "json")
    conversation_id = handed_over(fin)
    with server.db.transaction() as session:
        conversation = conversations.get_conversation(session, conversation_id)
        alerts.raise_sla_breach(
            session, conversation, "first_response", {"due_at": "2026-12-04T10:00:00.000Z"}
        )
    assert hooks.wait_for(lambda _: bool(hits(hooks, path, "sla.breached", conversation_id)))
    hit = hits(hooks, path, "sla.breached", conversation_id)[0]
    verify_standard_webhook(secret, hit.headers, hit.raw)
    assert hit.body["data"]["target"] == "first_response"
    assert hit.body["data"]["detail"] == {"due_at": "2026-12-04T10:00:00.000Z"}
    # Only what it subscribed to: the handover before it was not sent to this endpoint.
    assert hits(hooks, path, HANDED_OVER, conversation_id) == []


def test_digest_slots() -> None:
    now = datetime(2026, 12, 4, 21, 7, 30, tzinfo=UTC)
    assert alerts.digest_slot_end(now, 15) == datetime(2026, 12, 4, 21, 15, tzinfo=UTC)
    assert alerts.digest_slot_end(now, 60) == datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
