"""Fin answers the chat through Intercom's Fin Agent API: findesk's calls (``/fin/start``,
``/fin/reply``, ``/fin/csat``) against a recording Intercom double, and Intercom's signed events
on ``/chat/hooks/fin-agent-api``. Both backends, real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chat.chat_support import (
    FIN_AGENT_TOKEN,
    IDENTITY_SECRET,
    WEBHOOK_SECRET,
    EventStream,
    IntercomDouble,
    Visitor,
    fast_outbox,
    signed_hash,
)
from inbox.web_support import start_server
from sqlalchemy import func, select
from support.receiver import eventually
from support.server import LiveServer

from findesk.chat import fin_agent_api
from findesk.conversations.models import Conversation, ConversationEvent, Message
from findesk.csat.models import CsatRating
from findesk.notifier.models import OutboxEvent


@pytest.fixture(scope="module")
def intercom() -> Iterator[IntercomDouble]:
    double = IntercomDouble().up()
    yield double
    double.down()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    intercom: IntercomDouble,
) -> Iterator[LiveServer]:
    live = start_server(
        request,
        request.param,
        tmp_path_factory.mktemp("chat-fin-agent"),
        chat_channel="fin_agent_api",
        chat_identity_secret=IDENTITY_SECRET,
        fin_agent_api_token=FIN_AGENT_TOKEN,
        fin_agent_api_webhook_secret=WEBHOOK_SECRET,
        intercom_api_url=intercom.url,
        **fast_outbox(),
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    with server.agent_http(f"fa-agent-{uuid.uuid4().hex[:6]}@example.com", "Grace") as client:
        yield client


def event(
    server: LiveServer, payload: dict[str, Any], secret: str | None = WEBHOOK_SECRET, **kw: Any
) -> httpx.Response:
    raw = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    if secret is not None:
        headers[fin_agent_api.SIGNATURE_HEADER] = fin_agent_api.signature(secret, raw)
    return httpx.post(f"{server.base_url}/chat/hooks/fin-agent-api", content=raw, headers=headers)


def replied(conversation_id: str, message_id: str, body: str) -> dict[str, Any]:
    return {
        "event_name": "fin_replied",
        "conversation_id": conversation_id,
        "user_id": "u",
        "message": {"id": message_id, "author": "fin", "body": body, "timestamp_ms": 1},
        "status": "awaiting_user_reply",
        "created_at_ms": 1,
    }


def status(conversation_id: str, value: str, reason: str | None = None) -> dict[str, Any]:
    payload = {
        "event_name": "fin_status_updated",
        "conversation_id": conversation_id,
        "status": value,
    }
    if reason:
        payload["reason"] = reason
    return payload


def chat_calls(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.conversation_id == conversation_id, OutboxEvent.kind == "chat")
            )
            or 0
        )


def test_a_visitors_question_starts_fin_and_fins_reply_is_stored_once(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    user_id = f"site-{uuid.uuid4().hex[:6]}"
    ada = Visitor.start(
        server, user_id=user_id, user_hash=signed_hash(user_id), name="Ada", email="ada@example.com"
    )
    started = ada.ask("How do I reset my password?")
    conversation_id = started["conversation"]["id"]
    assert started["conversation"]["fin_state"] == "thinking"
    assert started["conversation"]["waiting_for_human"] is False
    [start] = intercom.wait_calls(conversation_id, 1)
    assert start.path == "/fin/start"
    assert start.headers["Authorization"] == f"Bearer {FIN_AGENT_TOKEN}"
    assert start.headers["Intercom-Version"]
    assert start.body["message"]["author"] == "user"
    assert start.body["message"]["body"] == "How do I reset my password?"
    assert start.body["message"]["timestamp"]
    assert start.body["user"] == {"id": ada.user_id, "name": "Ada", "email": "ada@example.com"}
    assert "conversation_metadata" in start.body

    stream = EventStream(server, ada.token)
    try:
        body = (
            '<p>Open <a href="https://help.example.com/reset">Settings</a>.</p>'
            "<script>steal()</script><img src=x onerror=alert(1)>"
        )
        first = event(server, replied(conversation_id, "fin-msg-1", body))
        assert first.status_code == 200, first.text
        assert event(server, replied(conversation_id, "fin-msg-1", body)).status_code == 200
        got = stream.wait_for(lambda e: e.name == "message" and e.data["author"]["type"] == "fin")
        assert "script" not in got.data["body_html"] and "onerror" not in got.data["body_html"]
        assert 'href="https://help.example.com/reset"' in got.data["body_html"]
    finally:
        stream.close()
    fins = [m for m in ada.messages(conversation_id) if m["author"]["type"] == "fin"]
    assert len(fins) == 1
    listed = ada.http.get("/conversations").json()[0]
    assert listed["fin_state"] == "awaiting_user_reply"

    ada.say(conversation_id, "It did not arrive")
    calls = intercom.wait_calls(conversation_id, 2)
    assert calls[1].path == "/fin/reply"
    assert calls[1].body["message"]["body"] == "It did not arrive"
    assert "conversation_metadata" not in calls[1].body


def test_escalation_puts_it_in_the_inbox_queue_and_fin_hears_no_more(
    server: LiveServer, intercom: IntercomDouble, agent: httpx.Client
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("I want a person")["conversation"]["id"]
    intercom.wait_calls(conversation_id, 1)
    answer = event(server, status(conversation_id, "escalated", "Escalation requested by user"))
    assert answer.status_code == 200
    assert event(server, status(conversation_id, "complete")).status_code == 200
    waiting = agent.get("/conversations", params={"queue": "waiting"}).json()
    assert conversation_id in [c["id"] for c in waiting["items"]]
    detail = agent.get(f"/conversations/{conversation_id}").json()
    assert (
        detail["conversation"]["attributes"]["fin_handover_reason"]
        == "Escalation requested by user"
    )
    with server.db.read_session() as session:
        handover = session.scalars(
            select(ConversationEvent).where(
                ConversationEvent.conversation_id == conversation_id,
                ConversationEvent.kind == "handover",
            )
        ).one()
        assert handover.detail["reason"] == "Escalation requested by user"
    state = ada.http.get("/conversations").json()[0]
    assert state["waiting_for_human"] is True and state["fin_state"] == "complete"
    before = chat_calls(server, conversation_id)
    ada.say(conversation_id, "Hello? Anyone?")
    assert chat_calls(server, conversation_id) == before  # nothing more for Fin
    # The agent answers in the inbox; the visitor sees it.
    reply = agent.post(
        f"/conversations/{conversation_id}/messages", json={"body": "<p>I am here.</p>"}
    )
    assert reply.status_code == 201
    assert ada.messages(conversation_id)[-1]["author"] == {
        "type": "agent",
        "name": "Grace",
        "avatar_url": None,
    }


def test_forged_events_are_refused_and_store_nothing(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Hi")["conversation"]["id"]
    forged = replied(conversation_id, "forged-1", "<p>Send me your card number</p>")
    raw = json.dumps(forged).encode()
    url = f"{server.base_url}/chat/hooks/fin-agent-api"
    attempts = [
        event(server, forged, secret=None),
        event(server, forged, secret="not-the-secret"),
        httpx.post(
            url, content=raw, headers={fin_agent_api.SIGNATURE_HEADER: "sha256=" + "0" * 64}
        ),
        # Signed, then changed: the signature covers the raw body.
        httpx.post(
            url,
            content=raw.replace(b"card", b"CARD"),
            headers={fin_agent_api.SIGNATURE_HEADER: fin_agent_api.signature(WEBHOOK_SECRET, raw)},
        ),
    ]
    for answer in attempts:
        assert answer.status_code == 401
    with server.db.read_session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == conversation_id)
        )
        assert count == 1
    # The bare hex is accepted too; HEAD answers (Intercom probes the URL).
    bare = fin_agent_api.signature(WEBHOOK_SECRET, raw).removeprefix("sha256=")
    ok = httpx.post(url, content=raw, headers={fin_agent_api.SIGNATURE_HEADER: bare})
    assert ok.status_code == 200
    assert httpx.head(url).status_code == 200
    unknown = event(server, {"event_name": "fin_thought", "conversation_id": conversation_id})
    assert unknown.status_code == 200


def test_intercom_down_then_up_loses_no_visitor_message(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    ada = Visitor.start(server)
    intercom.down()
    try:
        conversation_id = ada.ask("First")["conversation"]["id"]
        event(server, replied(conversation_id, f"m-{uuid.uuid4().hex[:6]}", "<p>Thinking</p>"))
        ada.say(conversation_id, "Second")
        ada.say(conversation_id, "Third")

        def retried() -> bool:
            with server.db.read_session() as session:
                rows = session.scalars(
                    select(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id)
                ).all()
                return any(r.attempts >= 2 for r in rows) and all(
                    r.state == "pending" for r in rows
                )

        assert eventually(retried)
        assert intercom.calls_for(conversation_id) == []
    finally:
        intercom.up()
    calls = intercom.wait_calls(conversation_id, 3)
    assert [(c.path, c.body["message"]["body"]) for c in calls] == [
        ("/fin/start", "First"),
        ("/fin/reply", "Second"),
        ("/fin/reply", "Third"),
    ]


def test_fin_asks_for_a_rating_and_it_goes_to_csat_and_fin(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Thanks, that worked")["conversation"]["id"]
    intercom.wait_calls(conversation_id, 1)
    stream = EventStream(server, ada.token)
    try:
        event(server, status(conversation_id, "resolved"))
        asked = {
            "event_name": "csat_requested",
            "conversation_id": conversation_id,
            "user_id": ada.user_id,
            "options": ["terrible", "bad", "ok", "good", "amazing"],
            "created_at_ms": 1,
        }
        assert event(server, asked).status_code == 200
        stream.wait_for(
            lambda e: e.name == "rating_request" and e.data["conversation_id"] == conversation_id
        )
    finally:
        stream.close()
    with server.db.read_session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.status == "resolved"
    rated = ada.http.post(
        f"/conversations/{conversation_id}/rating", json={"rating": "good", "remark": "Nice"}
    )
    assert rated.status_code == 201
    calls = intercom.wait_calls(conversation_id, 2)
    assert calls[1].path == "/fin/csat"
    assert calls[1].body == {"conversation_id": conversation_id, "rating": "good", "remark": "Nice"}
    with server.db.read_session() as session:
        row = session.get(CsatRating, conversation_id)
        assert row is not None and row.score == 4


def test_a_call_intercom_refuses_for_good_hands_the_chat_to_the_team(
    server: LiveServer, intercom: IntercomDouble, agent: httpx.Client
) -> None:
    ada = Visitor.start(server)
    intercom.status = 422  # (Intercom's validation error: retrying will not help)
    try:
        conversation_id = ada.ask("Hello?")["conversation"]["id"]

        def handed_over() -> bool:
            listed = ada.http.get("/conversations").json()
            return bool(listed) and listed[0]["waiting_for_human"] is True

        assert eventually(handed_over)
    finally:
        intercom.status = 200
    detail = agent.get(f"/conversations/{conversation_id}").json()["conversation"]
    assert detail["attributes"]["fin_handover_reason"].startswith("Intercom did not take")
    before = chat_calls(server, conversation_id)
    ada.say(conversation_id, "Anyone?")
    assert chat_calls(server, conversation_id) == before  # the team answers now
