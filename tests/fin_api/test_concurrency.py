"""Twenty concurrent identical creates leave exactly one row (spec 4.1), on both backends."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select
from support.fin import unique

from findesk.conversations.models import Conversation, Message
from findesk.users.models import EndUser

CONCURRENCY = 20


def fire_together(
    send: Callable[[httpx.Client], httpx.Response], fin: httpx.Client
) -> list[httpx.Response]:
    """Send CONCURRENCY requests at once, each from its own connection."""
    barrier = threading.Barrier(CONCURRENCY)

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=fin.base_url, headers=fin.headers, timeout=60) as client:
            barrier.wait()
            return send(client)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, range(CONCURRENCY)))


def rows(server, model: Any, object_id: str) -> int:
    with server.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(model).where(model.object_id == object_id)
            )
            or 0
        )


def assert_one_created(responses: list[httpx.Response], key: Callable[[dict], str]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (CONCURRENCY - 1) + [201], [
        r.text for r in responses if r.status_code >= 300
    ]
    assert len({key(r.json()) for r in responses}) == 1


def test_concurrent_identical_creates_make_one_row_each(server, fin: httpx.Client) -> None:
    user_object = unique("u")
    responses = fire_together(
        lambda c: c.post("/user", json={"object_id": user_object, "name": "Race"}), fin
    )
    assert_one_created(responses, lambda body: body["id"])
    assert rows(server, EndUser, user_object) == 1
    user_id = responses[0].json()["id"]

    conversation_object, message_object = unique("c"), unique("m")
    payload = {
        "user_id": user_id,
        "object_id": conversation_object,
        "initial_message": {
            "body": "<p>Hello</p>",
            "author": {"id": user_id, "user_type": "end_user"},
            "object_id": message_object,
        },
    }
    responses = fire_together(lambda c: c.post("/create_conversation", json=payload), fin)
    assert_one_created(responses, lambda body: body["data"]["conversation"]["id"])
    assert len({r.json()["data"]["initial_message"]["id"] for r in responses}) == 1
    assert rows(server, Conversation, conversation_object) == 1
    assert rows(server, Message, message_object) == 1
    conversation_id = responses[0].json()["data"]["conversation"]["id"]

    reply_object = unique("m")
    message = {
        "conversation_id": conversation_id,
        "body": "<p>Answer</p>",
        "author": {"id": server.fin_agent_id, "user_type": "agent"},
        "visibility": "public",
        "object_id": reply_object,
    }
    responses = fire_together(lambda c: c.post("/messages", json=message), fin)
    assert_one_created(responses, lambda body: body["id"])
    assert rows(server, Message, reply_object) == 1


def test_one_message_key_sent_at_once_into_two_conversations_makes_one_message(
    server, fin: httpx.Client
) -> None:
    """Not a repeat but a client's mistake: the same message ``object_id`` written into two
    conversations at once. One message is made; every other answer returns it (200) or says
    the key was taken meanwhile (409). Nothing fails with a 5xx, nothing else is lost."""
    user_id = fin.post("/user", json={"object_id": unique("u"), "name": "Twice"}).json()["id"]
    conversations = []
    for _ in range(2):
        made = fin.post(
            "/conversation",
            json={
                "user_id": user_id,
                "object_id": unique("c"),
                "initial_message": {
                    "body": "<p>Hello</p>",
                    "author": {"id": user_id, "user_type": "end_user"},
                    "object_id": unique("m"),
                },
            },
        )
        assert made.status_code == 201, made.text
        conversations.append(made.json()["conversation"]["id"])
    turns = itertools.count()  # (next() on it is atomic: half the calls go to each)
    for round_ in range(5):
        key = unique("m")

        def one(client: httpx.Client, key: str = key, round_: int = round_) -> httpx.Response:
            return client.post(
                "/messages",
                json={
                    "conversation_id": conversations[next(turns) % 2],
                    "body": f"<p>Round {round_}</p>",
                    "author": {"id": user_id, "user_type": "end_user"},
                    "object_id": key,
                },
            )

        responses = fire_together(one, fin)
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) == 1, [r.text for r in responses]
        assert set(statuses) <= {200, 201, 409}, [r.text for r in responses if r.status_code > 201]
        assert rows(server, Message, key) == 1
        made = next(r.json()["id"] for r in responses if r.status_code == 201)
        assert {r.json()["id"] for r in responses if r.status_code == 200} <= {made}
