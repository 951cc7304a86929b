"""``Idempotency-Key`` on the agent API's POSTs, against a live server on SQLite and PostgreSQL:
a retry returns the first answer and changes nothing more, whatever the timing; the key is the
calling agent's; the response is kept in the transaction of the change."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.fin import World
from support.server import LiveServer

from findesk.conversations.models import Message
from findesk.idempotency import service as idempotency
from findesk.idempotency.models import IdempotencyKey
from findesk.knowledge.models import Article
from findesk.notifier.models import OutboxEvent

PROBLEM_JSON = "application/problem+json"
REPLAYED = "Idempotent-Replayed"


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def other_agent(server: LiveServer) -> Iterator[httpx.Client]:
    with server.agent_http(f"bea-{uuid.uuid4().hex[:6]}@example.com", "Bea Other") as client:
        yield client


def new_key() -> str:
    return f"retry-{uuid.uuid4()}"


def waiting(world: World) -> str:
    conversation, _ = world.conversation()
    world.hand_over(conversation["id"])
    return str(conversation["id"])


def messages_by(server: LiveServer, conversation_id: str, agent_id: str) -> int:
    with server.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(
                    Message.conversation_id == conversation_id, Message.author_agent_id == agent_id
                )
            )
        )


def events(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        query = select(func.count()).select_from(OutboxEvent)
        return int(session.scalar(query.where(OutboxEvent.conversation_id == conversation_id)))


def stored_keys(server: LiveServer, key: str) -> list[IdempotencyKey]:
    with server.db.read_session() as session:
        return list(session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == key)))


def post(
    client: httpx.Client, path: str, key: str | bytes | None, body: Any = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(path, json=body, headers=headers)


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    if code is not None:
        assert problem["code"] == code, problem
    return str(problem["detail"])


def test_a_retried_reply_is_answered_again_and_applied_once(
    server: LiveServer, world: World, agent_client: httpx.Client
) -> None:
    cid = waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    key = new_key()
    path = f"/conversations/{cid}/messages"

    first = post(agent_client, path, key, {"body": "<p>Refund sent</p>"})
    after_first = events(server, cid)
    again = post(agent_client, path, key, {"body": "<p>Refund sent</p>"})

    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    assert again.status_code == 201
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    assert messages_by(server, cid, me) == 1
    assert events(server, cid) == after_first  # Fin hears of one reply
    # The same JSON written differently is the same request.
    respaced = agent_client.post(
        path,
        content=b'{ "body" :  "<p>Refund sent</p>" }',
        headers={"Idempotency-Key": key, "Content-Type": "application/json"},
    )
    assert respaced.status_code == 201 and respaced.headers[REPLAYED] == "true"
    # Without a key, or with a new one, a second reply is a second reply.
    assert post(agent_client, path, None, {"body": "<p>Refund sent</p>"}).status_code == 201
    assert post(agent_client, path, new_key(), {"body": "<p>Refund sent</p>"}).status_code == 201
    assert messages_by(server, cid, me) == 3


def test_every_post_takes_a_key_and_replays_its_status_and_headers(
    server: LiveServer, world: World, agent_client: httpx.Client
) -> None:
    cid = waiting(world)
    key = new_key()
    taken = post(agent_client, f"/conversations/{cid}/take-over", key)
    assert taken.status_code == 200, taken.text
    # The conversation moved on; the retry answers what happened then and takes nothing.
    assert post(agent_client, f"/conversations/{cid}/hand-back", None).status_code == 200
    retried = post(agent_client, f"/conversations/{cid}/take-over", key)
    assert retried.status_code == 200 and retried.headers[REPLAYED] == "true"
    assert retried.json() == taken.json()
    assert agent_client.get(f"/conversations/{cid}").json()["conversation"]["owner"] == "fin"

    title = f"Refunds {uuid.uuid4().hex[:8]}"
    key = new_key()
    created = post(agent_client, "/articles", key, {"title": title, "body": "Five days."})
    replayed = post(agent_client, "/articles", key, {"title": title, "body": "Five days."})
    assert created.status_code == 201, created.text
    assert replayed.status_code == 201 and replayed.headers[REPLAYED] == "true"
    assert replayed.json()["id"] == created.json()["id"]
    assert replayed.headers["location"] == created.headers["location"]
    with server.db.read_session() as session:
        assert session.scalar(select(func.count()).where(Article.title == title)) == 1


def test_the_same_key_for_another_request_is_refused(
    server: LiveServer, world: World, agent_client: httpx.Client
) -> None:
    cid, other = waiting(world), waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    key = new_key()
    assert post(
        agent_client, f"/conversations/{cid}/messages", key, {"body": "<p>A</p>"}
    ).is_success
    for path, body in [
        (f"/conversations/{cid}/messages", {"body": "<p>B</p>"}),  # another body
        (f"/conversations/{other}/messages", {"body": "<p>A</p>"}),  # another path
        (f"/conversations/{cid}/take-over", None),
    ]:
        detail = assert_problem(post(agent_client, path, key, body), 422, "idempotency_key_reused")
        assert "Idempotency-Key" in detail
    assert messages_by(server, cid, me) == 1 and messages_by(server, other, me) == 0
    assert agent_client.get(f"/conversations/{other}").json()["conversation"]["owner"] == "waiting"


def test_keys_belong_to_the_agent_who_sent_them(
    server: LiveServer, world: World, agent_client: httpx.Client, other_agent: httpx.Client
) -> None:
    cid = waiting(world)
    key = new_key()
    mine = post(agent_client, f"/conversations/{cid}/messages", key, {"body": "<p>Mine</p>"})
    theirs = post(other_agent, f"/conversations/{cid}/messages", key, {"body": "<p>Mine</p>"})
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["author"]["id"] == other_agent.agent_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [b"", b"k" * 256, "clé".encode()], ids=["empty", "256", "utf8"])
def test_an_empty_overlong_or_non_ascii_key_is_a_bad_request(
    server: LiveServer, world: World, agent_client: httpx.Client, bad: bytes
) -> None:
    cid = waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    response = post(agent_client, f"/conversations/{cid}/messages", bad, {"body": "<p>x</p>"})
    assert "255" in assert_problem(response, 400, "invalid_idempotency_key")
    assert "idempotency_key_header" not in response.text
    assert messages_by(server, cid, me) == 0
    longest = new_key().ljust(255, "k")
    ok = post(agent_client, f"/conversations/{cid}/messages", longest, {"body": "<p>x</p>"})
    assert ok.status_code == 201, ok.text


def test_a_failed_request_is_not_remembered(
    server: LiveServer, world: World, agent_client: httpx.Client
) -> None:
    cid = waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    key = new_key()
    path = f"/conversations/{cid}/messages"
    assert_problem(post(agent_client, path, key, {"body": ""}), 422)
    assert_problem(post(agent_client, "/conversations/conv_nope/messages", key, {"body": "x"}), 404)
    assert stored_keys(server, key) == []
    fixed = post(agent_client, path, key, {"body": "<p>Fixed</p>"})
    assert fixed.status_code == 201 and REPLAYED not in fixed.headers
    assert messages_by(server, cid, me) == 1


def test_concurrent_retries_with_one_key_apply_once(
    server: LiveServer, world: World, agent_client: httpx.Client
) -> None:
    cid = waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    key = new_key()
    tries = 8
    barrier = threading.Barrier(tries)
    token = agent_client.headers["authorization"]

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=str(agent_client.base_url), timeout=60) as http:
            barrier.wait()
            return http.post(
                f"/conversations/{cid}/messages",
                json={"body": "<p>Only once</p>"},
                headers={"Authorization": token, "Idempotency-Key": key},
            )

    with ThreadPoolExecutor(tries) as pool:
        responses = list(pool.map(attempt, range(tries)))

    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses]
    answered = [r for r in responses if r.status_code == 201]
    assert sum(REPLAYED not in r.headers for r in answered) == 1
    assert len({r.json()["id"] for r in answered}) == 1
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["code"] == "idempotency_key_in_use"
    assert messages_by(server, cid, me) == 1


def test_the_key_is_kept_in_the_transaction_of_the_change(
    server: LiveServer, world: World, agent_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure between the change and the end of its transaction keeps neither."""
    cid = waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    key = new_key()
    path = f"/conversations/{cid}/messages"

    def crash(*_: Any, **__: Any) -> None:
        raise RuntimeError("the process died before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(idempotency, "remember_response", crash)
        # A client of its own: the server drops the connection of a request that crashed.
        with httpx.Client(base_url=agent_client.base_url, headers=agent_client.headers) as own:
            try:
                failed = post(own, path, key, {"body": "<p>Once</p>"})
                assert failed.status_code == 500
            except httpx.TransportError:
                pass
    assert messages_by(server, cid, me) == 0
    assert stored_keys(server, key) == []

    done = post(agent_client, path, key, {"body": "<p>Once</p>"})
    assert done.status_code == 201 and REPLAYED not in done.headers
    [stored] = stored_keys(server, key)
    assert stored.agent_id == me and stored.response_status == 201
    assert stored.method == "POST" and stored.path == f"/api/v1{path}"
    assert messages_by(server, cid, me) == 1


def test_keys_expire_after_a_day_and_are_pruned(
    server: LiveServer, world: World, agent_client: httpx.Client
) -> None:
    cid = waiting(world)
    me = agent_client.agent_id  # type: ignore[attr-defined]
    key, stale_key = new_key(), new_key()
    path = f"/conversations/{cid}/messages"
    assert post(agent_client, path, key, {"body": "<p>Day one</p>"}).status_code == 201
    assert post(agent_client, path, stale_key, {"body": "<p>Other</p>"}).status_code == 201
    with server.db.transaction() as session:
        query = select(IdempotencyKey).where(IdempotencyKey.key.in_([key, stale_key]))
        for row in session.scalars(query):
            row.created_at -= timedelta(hours=24, seconds=1)
    # A day later the key is new again: the request runs again.
    later = post(agent_client, path, key, {"body": "<p>Day one</p>"})
    assert later.status_code == 201 and REPLAYED not in later.headers
    assert messages_by(server, cid, me) == 3
    # Expired keys are deleted.
    with server.db.transaction() as session:
        idempotency.prune(session)
    assert stored_keys(server, stale_key) == []
    assert len(stored_keys(server, key)) == 1  # the fresh one stays


def test_other_methods_ignore_the_key(agent_client: httpx.Client) -> None:
    response = agent_client.get("/me", headers={"Idempotency-Key": "k" * 300})
    assert response.status_code == 200
