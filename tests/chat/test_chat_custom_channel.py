"""Fin answers the chat through Intercom's Custom Channel Events: findesk's ``notify_*`` calls
against a recording Intercom double, and Intercom's callbacks on ``/chat/hooks/custom-channel``
(findesk's documented shape, bearer-authenticated). Both backends, real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chat.chat_support import (
    CC_CALLBACK_TOKEN,
    CC_TOKEN,
    IDENTITY_SECRET,
    EventStream,
    IntercomDouble,
    Visitor,
    fast_outbox,
    signed_hash,
)
from inbox.web_support import start_server
from sqlalchemy import func, select
from support.server import LiveServer

from findesk.conversations.models import Message
from findesk.notifier.models import OutboxEvent

HOOK = "/chat/hooks/custom-channel"


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
        tmp_path_factory.mktemp("chat-custom-channel"),
        chat_channel="custom_channel",
        chat_identity_secret=IDENTITY_SECRET,
        custom_channel_token=CC_TOKEN,
        custom_channel_callback_token=CC_CALLBACK_TOKEN,
        intercom_api_url=intercom.url,
        **fast_outbox(),
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    with server.agent_http(f"cc-agent-{uuid.uuid4().hex[:6]}@example.com", "Grace") as client:
        yield client


def callback(
    server: LiveServer,
    conversation_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    token: str | None = CC_CALLBACK_TOKEN,
) -> httpx.Response:
    payload = {
        "event_id": event_id or f"evt-{uuid.uuid4().hex[:8]}",
        "event_type": event_type,
        "external_conversation_id": conversation_id,
        "conversation_id": f"ic-{conversation_id}",
        "created_at": "2026-12-05T03:00:00Z",
        "data": data,
    }
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(f"{server.base_url}{HOOK}", json=payload, headers=headers)


def fin_says(message_id: str, body: str) -> dict[str, Any]:
    return {"message": {"id": message_id, "body": body, "author": {"type": "fin", "name": "Fin"}}}


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


def test_a_new_conversation_and_its_messages_are_notified_in_order(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    user_id = f"site-{uuid.uuid4().hex[:6]}"
    ada = Visitor.start(
        server, user_id=user_id, user_hash=signed_hash(user_id), name="Ada", email="ada@example.com"
    )
    conversation_id = ada.ask("Where is my order?")["conversation"]["id"]
    calls = intercom.wait_calls(conversation_id, 2)
    assert [c.path for c in calls] == [
        "/custom_channel_events/notify_new_conversation",
        "/custom_channel_events/notify_new_message",
    ]
    first, message = calls
    assert first.headers["Authorization"] == f"Bearer {CC_TOKEN}"
    assert first.body["contact"] == {
        "type": "user",
        "external_id": ada.user_id,
        "name": "Ada",
        "email": "ada@example.com",
    }
    assert message.body["body"] == "Where is my order?"
    assert first.body["event_id"] != message.body["event_id"]
    lead = Visitor.start(server)
    lead_id = lead.ask("Hi")["conversation"]["id"]
    assert intercom.wait_calls(lead_id, 1)[0].body["contact"]["type"] == "lead"
    # Intercom requires a user's name and email: a signed visitor the site sent without an
    # email is announced as a lead with what is known, never refused as a user.
    other_id = f"site-{uuid.uuid4().hex[:6]}"
    grace = Visitor.start(server, user_id=other_id, user_hash=signed_hash(other_id), name="Grace")
    grace_conversation = grace.ask("Hello?")["conversation"]["id"]
    assert intercom.wait_calls(grace_conversation, 1)[0].body["contact"] == {
        "type": "lead",
        "external_id": grace.user_id,
        "name": "Grace",
    }


def test_fins_messages_quick_replies_and_typing_reach_the_visitor_once(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Can I return shoes?")["conversation"]["id"]
    intercom.wait_calls(conversation_id, 2)
    stream = EventStream(server, ada.token)
    try:
        assert callback(server, conversation_id, "typing", {}).status_code == 200
        typing = stream.wait_for(lambda e: e.name == "typing")
        assert typing.data == {"conversation_id": conversation_id, "author": "fin"}
        said = fin_says("ic-msg-1", "<p>Yes, within 30 days.</p><script>x()</script>")
        assert (
            callback(server, conversation_id, "new_message", said, event_id="e-1").status_code
            == 200
        )
        assert (
            callback(server, conversation_id, "new_message", said, event_id="e-1").status_code
            == 200
        )
        assert (
            callback(server, conversation_id, "new_message", said, event_id="e-2").status_code
            == 200
        )
        got = stream.wait_for(lambda e: e.name == "message" and e.data["author"]["type"] == "fin")
        assert got.data["body_html"] == "<p>Yes, within 30 days.</p>"
        options = [{"id": "yes", "label": "Yes"}, {"id": "human", "label": "Talk to a person"}]
        asked = {"message": {"id": "ic-msg-2", "body": "<p>Did that help?</p>"}, "options": options}
        assert callback(server, conversation_id, "quick_replies", asked).status_code == 200
        offer = stream.wait_for(lambda e: e.name == "message" and e.data["quick_replies"])
        assert offer.data["quick_replies"] == options
    finally:
        stream.close()
    fins = [m for m in ada.messages(conversation_id) if m["author"]["type"] == "fin"]
    assert len(fins) == 2  # the repeated event and the repeated message id are stored once
    chosen = ada.say(conversation_id, quick_reply_id="yes")
    assert "Yes" in chosen["body_html"]
    calls = intercom.wait_calls(conversation_id, 3)
    assert calls[2].path == "/custom_channel_events/notify_quick_reply_selected"
    assert calls[2].body["quick_reply_option_id"] == "yes"
    unknown = ada.http.post(
        f"/conversations/{conversation_id}/messages", json={"quick_reply_id": "nope"}
    )
    assert unknown.status_code == 422


def test_an_attribute_fin_asks_for_is_collected_from_the_next_message(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Track my order")["conversation"]["id"]
    intercom.wait_calls(conversation_id, 2)
    request = {
        "attribute": {"id": "order_number", "name": "Order number", "type": "string"},
        "prompt": "What is your order number?",
    }
    assert callback(server, conversation_id, "attribute_request", request).status_code == 200
    assert ada.messages(conversation_id)[-1]["body_html"] == "<p>What is your order number?</p>"
    ada.say(conversation_id, "A-1234")
    calls = intercom.wait_calls(conversation_id, 3)
    assert calls[2].path == "/custom_channel_events/notify_attribute_collected"
    assert calls[2].body["attribute"] == {"id": "order_number", "value": "A-1234"}
    ada.say(conversation_id, "Thanks")
    assert intercom.wait_calls(conversation_id, 4)[3].path.endswith("/notify_new_message")


def test_handover_puts_it_in_the_inbox_queue_and_nothing_more_goes_to_fin(
    server: LiveServer, intercom: IntercomDouble, agent: httpx.Client
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Talk to a person")["conversation"]["id"]
    intercom.wait_calls(conversation_id, 2)
    handed = callback(server, conversation_id, "handover", {"reason": "Customer asked for a human"})
    assert handed.status_code == 200
    assert callback(server, conversation_id, "end", {}).status_code == 200
    waiting = agent.get("/conversations", params={"queue": "waiting"}).json()
    assert conversation_id in [c["id"] for c in waiting["items"]]
    detail = agent.get(f"/conversations/{conversation_id}").json()["conversation"]
    assert detail["attributes"]["fin_handover_reason"] == "Customer asked for a human"
    assert ada.http.get("/conversations").json()[0]["waiting_for_human"] is True
    before = chat_calls(server, conversation_id)
    ada.say(conversation_id, "Still there?")
    assert chat_calls(server, conversation_id) == before


def test_forged_callbacks_are_refused_and_store_nothing(
    server: LiveServer, intercom: IntercomDouble
) -> None:
    ada = Visitor.start(server)
    conversation_id = ada.ask("Hello")["conversation"]["id"]
    said = fin_says("forged", "<p>Click here to win</p>")
    for token in (None, "wrong-token", CC_CALLBACK_TOKEN + "x", CC_CALLBACK_TOKEN.upper()):
        refused = callback(server, conversation_id, "new_message", said, token=token)
        assert refused.status_code == 401
    basic = httpx.post(
        f"{server.base_url}{HOOK}",
        json={
            "event_id": "x",
            "event_type": "handover",
            "external_conversation_id": conversation_id,
        },
        headers={"Authorization": f"Basic {CC_CALLBACK_TOKEN}"},
    )
    assert basic.status_code == 401
    with server.db.read_session() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == conversation_id)
        )
        assert count == 1
    assert ada.http.get("/conversations").json()[0]["waiting_for_human"] is False
