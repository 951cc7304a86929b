"""get_conversation reads plain columns and encodes them itself (Fin reads a conversation on
every sync): its answer must stay byte for byte what the route's response_model gives from the
ORM objects, in both variants, for a conversation with and without an assignee, with tags,
attributes, a user with empty fields, and text outside ASCII."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import event
from support.fin import World
from support.server import LiveServer

from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.fin_api import schemas as s
from findesk.fin_api.client import FinApiClient
from findesk.fin_api.wire import conversation_out


def encoded_from_orm(server: LiveServer, cid: str, envelope: bool) -> bytes:
    with server.db.read_session() as session:
        out = conversation_out(conversations.get_conversation(session, cid))
    if envelope:
        wrapped = s.Envelope[s.ConversationOut](data=out, error=None)
        return TypeAdapter(s.Envelope[s.ConversationOut]).dump_json(wrapped)
    return TypeAdapter(s.ConversationOut).dump_json(out)


def fetch(fin: httpx.Client, cid: str, envelope: bool) -> httpx.Response:
    if envelope:
        return fin.post("/get_conversation", json={"conversation_id": cid})
    return fin.get("/conversation", params={"conversation_id": cid})


@pytest.mark.parametrize("envelope", [False, True], ids=["rest", "posts-only"])
def test_get_conversation_answers_what_the_model_gives(
    server: LiveServer, fin: httpx.Client, agent_client: httpx.Client, envelope: bool
) -> None:
    world = World(FinApiClient(fin, "rest"), server.fin_agent_id)
    plain = world.user(name=None, email=None, photo_url=None, attributes={})
    rich = world.user(
        name="Zoë Ünïcode 👋",
        email="zoe@example.com",
        attributes={"plan": "Pro", "seats": 12, "ratio": 0.1, "n": [1, None, True]},
    )
    bare, _ = world.conversation(plain)
    full, _ = world.conversation(rich, title="Refund « 42 » ✔")
    world.update(full["id"], tags=["billing", "vip"], attributes={"issue_type": "Billing"})
    world.hand_over(full["id"])
    taken = agent_client.post(f"/conversations/{full['id']}/take-over")
    assert taken.status_code == 200, taken.text

    loaded: list[Conversation] = []  # the server runs in this process: count its ORM loads

    def on_load(target: Conversation, _context: Any) -> None:
        loaded.append(target)

    for cid in (bare["id"], full["id"]):
        event.listen(Conversation, "load", on_load)
        try:
            answer = fetch(fin, cid, envelope)
        finally:
            event.remove(Conversation, "load", on_load)
        assert answer.status_code == 200, answer.text
        assert loaded == []  # no ORM object on the read path
        assert answer.content == encoded_from_orm(server, cid, envelope)

    conversation = fetch(fin, full["id"], envelope).json()
    conversation = conversation["data"] if envelope else conversation
    assert conversation["tags"] == ["billing", "vip"]
    assert conversation["assignee"]["id"] == agent_client.agent_id  # type: ignore[attr-defined]

    missing = fetch(fin, "conv_missing", envelope)
    assert missing.status_code == 404
