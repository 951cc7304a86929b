"""What reaches Fin's webhook, and what must not (spec 6), against a real receiver on loopback.

Absence is proven without sleeping: after the action that must send nothing, a "barrier" action
that must send something is made; deliveries go in order, so once the barrier has arrived
anything the first action would have sent has arrived too.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from support.fin import World
from support.receiver import WEBHOOK_KEY, Receiver, eventually
from support.server import LiveServer

from findesk.kit.settings import Settings
from findesk.notifier.models import OutboxEvent

PATH = "/hooks/standalone/custom_helpdesk_conversation_event/test-integration"


@pytest.fixture(scope="module")
def world(notified: LiveServer) -> World:
    return notified.fin_world()


def new_conversation(world: World) -> str:
    conversation, _ = world.conversation()
    return str(conversation["id"])


def delivered_after(receiver: Receiver, conversation_id: str, count: int = 0) -> list[Any]:
    """Wait for more than ``count`` sync deliveries of the conversation, and return them all."""
    assert receiver.wait_until(
        lambda got: (
            sum(r.conversation_id == conversation_id and "event_type" not in r.body for r in got)
            > count
        ),
        timeout=20,
    ), f"nothing delivered for {conversation_id}"
    return [r for r in receiver.for_conversation(conversation_id) if "event_type" not in r.body]


def barrier(world: World, agent: Any, receiver: Receiver) -> None:
    """An agent action whose delivery proves that everything before it was processed."""
    conversation_id = new_conversation(world)
    assert (
        agent.post(
            f"/conversations/{conversation_id}/messages", json={"body": "<p>barrier</p>"}
        ).status_code
        == 201
    )
    delivered_after(receiver, conversation_id)


def assert_sync_delivery(hit: Any, conversation_id: str) -> None:
    assert hit.path == PATH
    assert hit.headers["X-Webhook-Key"] == WEBHOOK_KEY
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Findesk-Delivery"].startswith("dlv_")
    assert hit.body == {"conversation_id": conversation_id}


@pytest.mark.parametrize(
    ("action", "method", "suffix", "payload"),
    [
        ("agent reply", "POST", "/messages", {"body": "<p>Hello from a human</p>"}),
        ("private note", "POST", "/messages", {"body": "<p>note</p>", "visibility": "private"}),
        ("status change", "PATCH", "", {"status": "resolved"}),
        ("assignment", "POST", "/take-over", None),
        ("tag change", "PATCH", "", {"tags": ["billing", "vip"]}),
        ("attributes", "PATCH", "", {"attributes": {"priority": "high"}}),
        ("title", "PATCH", "", {"title": "Refund request"}),
    ],
)
def test_agent_actions_reach_fin(world, agent, receiver, action, method, suffix, payload) -> None:
    conversation_id = new_conversation(world)
    response = agent.request(method, f"/conversations/{conversation_id}{suffix}", json=payload)
    assert response.is_success, response.text
    hits = delivered_after(receiver, conversation_id)
    assert_sync_delivery(hits[0], conversation_id)


def test_fin_api_writes_are_not_echoed(world, agent, receiver, notified) -> None:
    conversation, _ = world.conversation()
    cid = conversation["id"]
    world.fin_says(cid)
    world.user_says(cid, conversation["user"]["id"], "<p>thanks</p>")
    world.update(cid, title="Fin's title", tags=["fin"], status="resolved")
    world.api.update_user(conversation["user"]["id"], attributes={"plan": "pro"})
    world.hand_over(cid)
    barrier(world, agent, receiver)
    assert receiver.for_conversation(cid) == []
    with notified.db.read_session() as session:
        assert (
            session.scalars(select(OutboxEvent).where(OutboxEvent.conversation_id == cid)).all()
            == []
        )


def test_a_rolled_back_action_sends_nothing(world, agent, receiver, notified) -> None:
    cid = new_conversation(world)
    # The title is valid, the assignee is not: the whole change is rolled back.
    response = agent.patch(f"/conversations/{cid}", json={"title": "x", "assignee_id": "agt_nope"})
    assert response.status_code == 404
    barrier(world, agent, receiver)
    assert receiver.for_conversation(cid) == []
    with notified.db.read_session() as session:
        assert (
            session.scalars(select(OutboxEvent).where(OutboxEvent.conversation_id == cid)).all()
            == []
        )


def outbox_states(server: LiveServer, conversation_id: str) -> list[str]:
    with server.db.read_session() as session:
        return list(
            session.scalars(
                select(OutboxEvent.state).where(OutboxEvent.conversation_id == conversation_id)
            )
        )


def test_rapid_changes_are_coalesced_and_all_delivered(world, agent, receiver, notified) -> None:
    cid = new_conversation(world)
    # The first change's call is kept in flight while 14 more changes land ...
    receiver.hold()
    try:
        assert agent.patch(f"/conversations/{cid}", json={"title": "t0"}).is_success
        assert receiver.wait_until(lambda got: any(r.conversation_id == cid for r in got))
        for n in range(1, 15):
            assert agent.patch(f"/conversations/{cid}", json={"title": f"t{n}"}).is_success
    finally:
        receiver.release()
    # ... so every event is delivered (a call started after each change was committed) ...
    assert eventually(lambda: set(outbox_states(notified, cid)) == {"delivered"})
    assert len(outbox_states(notified, cid)) == 15
    # ... by exactly two calls: the one in flight, and one for the 14 that waited for it.
    assert len(receiver.for_conversation(cid)) == 2


def test_typing_has_the_spec_shape_and_is_throttled(world, agent, receiver) -> None:
    cid = new_conversation(world)
    other = new_conversation(world)
    first = agent.post(f"/conversations/{cid}/typing")
    second = agent.post(f"/conversations/{cid}/typing")
    assert (first.status_code, second.status_code) == (202, 202)
    assert agent.post(f"/conversations/{other}/typing").status_code == 202
    assert receiver.wait_until(lambda got: any(r.body.get("conversation_id") == other for r in got))
    typing = [r for r in receiver.for_conversation(cid) if r.body.get("event_type")]
    assert len(typing) == 1  # the second, within the throttle, was not sent
    me = agent.get("/me").json()
    assert typing[0].path == PATH
    assert typing[0].headers["X-Webhook-Key"] == WEBHOOK_KEY
    assert typing[0].body == {
        "conversation_id": cid,
        "event_type": "agent_typing",
        "data": {
            "agent": {
                "id": me["id"],
                "user_type": "agent",
                "name": me["alias"] or me["name"],
                "email": me["email"],
            }
        },
    }


def test_typing_for_an_unknown_conversation_is_404(agent) -> None:
    assert agent.post("/conversations/conv_nope/typing").status_code == 404


def test_webhook_url_from_region_and_integration_id() -> None:
    assert Settings(fin_integration_id="a3c729d4").fin_webhook_target == (
        "https://api.intercom.io/hooks/standalone/custom_helpdesk_conversation_event/a3c729d4"
    )
    assert Settings(fin_region="eu", fin_integration_id="x").fin_webhook_target.startswith(
        "https://api.eu.intercom.io/hooks/"
    )
    assert Settings(fin_region="au", fin_integration_id="x").fin_webhook_target.startswith(
        "https://api.au.intercom.io/hooks/"
    )
    assert (
        Settings(fin_webhook_url="https://x.example/h", fin_integration_id="y").fin_webhook_target
        == "https://x.example/h"
    )
    assert Settings().fin_webhook_target is None
