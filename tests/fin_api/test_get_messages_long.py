"""get_messages on a long conversation (SQLite and PostgreSQL): Fin has no paging, so every
message after ``after_id`` comes back, in one answer byte for byte what the route's
response_model gives (the encoding before get_messages skipped the models), and the call
ledger still hears of every id returned."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlalchemy import event, select
from support.fin import World
from support.long_conversation import add_messages, open_long
from support.receiver import eventually
from support.server import LiveServer

from findesk.conversations import service as conversations
from findesk.conversations.models import Message
from findesk.fin_api import schemas as s
from findesk.fin_api.client import FinApiClient
from findesk.fin_api.wire import message_out

MESSAGES = 2_100  # over the 2,001 of the issue


def previous_encoding(server: LiveServer, cid: str, after_id: str | None, envelope: bool) -> bytes:
    """The answer as findesk encoded it before: ORM rows, one ``MessageOut`` each, serialised
    by the route's response_model."""
    with server.db.read_session() as session:
        messages = [
            message_out(m) for m in conversations.list_messages(session, cid, after_id=after_id)
        ]
    if envelope:
        wrapped = s.Envelope[list[s.MessageOut]](data=messages, error=None)
        return TypeAdapter(s.Envelope[list[s.MessageOut]]).dump_json(wrapped)
    return TypeAdapter(list[s.MessageOut]).dump_json(messages)


def seen_by_fin_at(server: LiveServer, message_id: str) -> Any:
    with server.db.read_session() as session:
        return session.scalar(select(Message.seen_by_fin_at).where(Message.id == message_id))


def test_get_messages_returns_every_message_encoded_as_before(
    server: LiveServer, fin: httpx.Client, agent_client: httpx.Client
) -> None:
    world = World(FinApiClient(fin, "rest"), server.fin_agent_id)
    long = open_long(
        world,
        server.db,
        MESSAGES,
        human_agent_id=agent_client.agent_id,  # type: ignore[attr-defined]
        name="Zoë Ünïcode 👋",
        attributes={"plan": "Pro", "seats": 12, "ratio": 0.1, "big": 1e16, "n": [1, None, True]},
    )
    cid = long.id
    # Messages of another end user too (a merge of two people could leave them): authors are
    # not only the conversation's user.
    other = world.user(name=None, email="other@example.com")["id"]
    merged = add_messages(
        server.db,
        cid,
        4,
        user_id=other,
        fin_agent_id=server.fin_agent_id,
        human_agent_id=agent_client.agent_id,  # type: ignore[attr-defined]
    )
    replied = agent_client.post(f"/conversations/{cid}/messages", json={"body": "<p>Done ✔</p>"})
    assert replied.status_code == 201, replied.text
    reply = replied.json()
    every_id = [*long.message_ids, *merged.ids, reply["id"]]

    loaded: list[Message] = []  # the server runs in this process: count its ORM loads

    def on_load(target: Message, _context: Any) -> None:
        loaded.append(target)

    event.listen(Message, "load", on_load)
    try:
        rest = fin.get("/messages", params={"conversation_id": cid})
    finally:
        event.remove(Message, "load", on_load)
    assert rest.status_code == 200, rest.text
    assert loaded == [], "get_messages built an ORM object a message"
    assert rest.headers["content-type"] == "application/json"
    assert [m["id"] for m in rest.json()] == every_id
    assert rest.content == previous_encoding(server, cid, None, envelope=False)
    assert {m["visibility"] for m in rest.json()} == {"public", "private"}
    assert any(m["body"] is None and m["attachments"] for m in rest.json())

    posts = fin.post("/get_messages", json={"conversation_id": cid})
    assert posts.status_code == 200, posts.text
    assert posts.content == previous_encoding(server, cid, None, envelope=True)
    assert [m["id"] for m in posts.json()["data"]] == every_id

    # With after_id: only the later ones; an unknown after_id: every message.
    tail = fin.get("/messages", params={"conversation_id": cid, "after_id": every_id[-4]})
    assert [m["id"] for m in tail.json()] == every_id[-3:]
    assert tail.content == previous_encoding(server, cid, every_id[-4], envelope=False)
    unknown = fin.post("/get_messages", json={"conversation_id": cid, "after_id": "msg_nope"})
    assert posts.content == unknown.content

    # The ledger heard of every id returned: the human reply has its receipt.
    assert eventually(lambda: seen_by_fin_at(server, reply["id"]) is not None, 20)


def test_an_empty_answer_and_an_unknown_conversation(server: LiveServer, fin: httpx.Client) -> None:
    world = World(FinApiClient(fin, "rest"), server.fin_agent_id)
    _, first = world.conversation()
    cid = first["conversation_id"]
    rest = fin.get("/messages", params={"conversation_id": cid, "after_id": first["id"]})
    assert (rest.status_code, rest.content) == (200, b"[]")
    posts = fin.post("/get_messages", json={"conversation_id": cid, "after_id": first["id"]})
    assert (posts.status_code, posts.json()) == (200, {"data": [], "error": None})
    assert fin.get("/messages", params={"conversation_id": "conv_nope"}).status_code == 404
    missing = fin.post("/get_messages", json={"conversation_id": "conv_nope"})
    assert missing.status_code == 404
    assert missing.json()["data"] is None
