"""The emulator's sync engine, calling a real findesk as Fin does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.server import LiveServer

from findesk.auth.service import revoke_access_token
from findesk.conversations.models import Conversation
from findesk.emulator.sync import Decision, ErrorLog, HelpdeskConnection, SyncEngine


class ScriptedAnswerer:
    """Records what it is asked; answers with ``decide`` (by default a plain reply)."""

    def __init__(
        self, decide: Callable[[list[dict[str, Any]]], Decision] | None = None, delay: float = 0
    ) -> None:
        self.decide = decide or (lambda messages: Decision(reply_html="<p>Fin here.</p>"))
        self.delay = delay
        self.asked: list[list[dict[str, Any]]] = []

    def answer(
        self, conversation: dict[str, Any], messages: list[dict[str, Any]], user: dict[str, Any]
    ) -> Decision:
        self.asked.append(messages)
        time.sleep(self.delay)
        return self.decide(messages)


class Gate(httpx.BaseTransport):
    """Sits in front of the real network, like a proxy: records every request and its status,
    fails the requests listed in ``failures`` (``"[METHOD ]/path-end"`` → status or exception),
    and can play a helpdesk that ignores ``after_id``."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.failures: list[tuple[str, int | Exception]] = []
        self.seen: list[tuple[httpx.Request, int | None]] = []
        self.ignore_after_id = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for i, (fragment, failure) in enumerate(self.failures):
            method, _, path = fragment.rpartition(" ")
            if request.url.path.endswith(path) and method in ("", request.method):
                del self.failures[i]
                if isinstance(failure, Exception):
                    self.seen.append((request, None))
                    raise failure
                self.seen.append((request, failure))
                return httpx.Response(failure, json={"title": "injected"}, request=request)
        if self.ignore_after_id and "after_id" in request.url.params:
            url = request.url.copy_remove_param("after_id")
            request = httpx.Request(request.method, url, headers=request.headers)
        response = self.real.handle_request(request)
        self.seen.append((request, response.status_code))
        return response

    def statuses(self, fragment: str) -> list[int | None]:
        return [status for req, status in self.seen if req.url.path.endswith(fragment)]

    def requests(self, fragment: str) -> list[httpx.Request]:
        return [req for req, _ in self.seen if req.url.path.endswith(fragment)]

    def close(self) -> None:
        self.real.close()


@pytest.fixture
def gate() -> Gate:
    return Gate()


MakeEngine = Callable[..., SyncEngine]


@pytest.fixture
def make_engine(server: LiveServer, gate: Gate) -> Iterator[MakeEngine]:
    engines: list[SyncEngine] = []

    def make(
        answerer: ScriptedAnswerer | None = None,
        variant: Any = "rest",
        grant_format: Any = "json",
        **settings: Any,
    ) -> SyncEngine:
        client_id, secret = server.new_oauth_client()
        connection = HelpdeskConnection(
            f"{server.base_url}/api/fin",
            f"{server.base_url}/oauth/token",
            client_id,
            secret,
            grant_format=grant_format,
            variant=variant,
            transport=gate,
        )
        options: dict[str, Any] = {"retry_delay": 0.05, "debounce": 0.2, **settings}
        engine = SyncEngine(
            connection, answerer or ScriptedAnswerer(), server.fin_agent_id, **options
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def new_user() -> dict[str, Any]:
    return {
        "object_id": f"u-{time.monotonic_ns()}",
        "name": "Jane Doe",
        "email": "jane@example.com",
    }


def conversation(engine: SyncEngine, conversation_id: str) -> dict[str, Any]:
    reply = engine.connection.api.get_conversation(conversation_id)
    assert reply.ok, reply.error
    return dict(reply.data)


def messages(engine: SyncEngine, conversation_id: str) -> list[dict[str, Any]]:
    reply = engine.connection.api.get_messages(conversation_id)
    assert reply.ok, reply.error
    return list(reply.data)


def end_user_says(server: LiveServer, conversation_id: str, user_id: str, html: str) -> str:
    """Another Messenger session (not the engine) writes: the engine learns of it by a sync."""
    return str(server.fin_world().user_says(conversation_id, user_id, html)["id"])


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("variant", "grant_format"), [("rest", "json"), ("posts-only", "form")])
def test_a_started_conversation_gets_fins_reply_as_the_fin_agent(
    server: LiveServer, make_engine: MakeEngine, variant: str, grant_format: str
) -> None:
    answerer = ScriptedAnswerer(
        lambda _: Decision(
            reply_html="<p>Reset it under Settings.</p>",
            title="Password reset",
            tags=["password"],
            attributes={"topic": "account"},
        )
    )
    engine = make_engine(answerer, variant=variant, grant_format=grant_format)

    result = engine.start_conversation(new_user(), "<p>How do I reset my password?</p>")

    assert result.ok, result.error
    assert result.conversation_id is not None
    assert [[m["body"] for m in asked] for asked in answerer.asked] == [
        ["<p>How do I reset my password?</p>"]
    ]
    thread = messages(engine, result.conversation_id)
    assert [m["author"]["user_type"] for m in thread] == ["end_user", "agent"]
    assert thread[1]["author"]["id"] == server.fin_agent_id
    assert thread[1]["body"] == "<p>Reset it under Settings.</p>"
    assert thread[1]["visibility"] == "public"
    state = conversation(engine, result.conversation_id)
    assert state["assignee"]["id"] == server.fin_agent_id
    assert (state["title"], state["tags"], state["attributes"]) == (
        "Password reset",
        ["password"],
        {"topic": "account"},
    )

    # The end user writes again in the Messenger: Fin answers that message only.
    again = engine.user_says(result.conversation_id, "<p>Thanks, and my email?</p>")
    assert again.ok, again.error
    assert [m["body"] for m in answerer.asked[-1]] == ["<p>Thanks, and my email?</p>"]
    assert len(messages(engine, result.conversation_id)) == 4


def test_a_verified_user_starts_a_conversation_by_id(
    server: LiveServer, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    user_id = server.fin_world().user()["id"]

    result = engine.start_conversation({"user_id": user_id}, "<p>Hi</p>")

    assert result.ok, result.error
    assert result.conversation_id is not None
    assert conversation(engine, result.conversation_id)["user"]["id"] == user_id


def test_a_hand_over_leaves_the_conversation_to_humans(
    server: LiveServer, make_engine: MakeEngine
) -> None:
    answerer = ScriptedAnswerer(
        lambda _: Decision(reply_html="<p>A colleague will take over.</p>", hand_over=True)
    )
    engine = make_engine(answerer)

    result = engine.start_conversation(new_user(), "<p>I want a refund.</p>")

    assert result.ok, result.error
    assert result.conversation_id is not None
    assert conversation(engine, result.conversation_id)["assignee"] is None
    with server.db.read_session() as session:
        row = session.get(Conversation, result.conversation_id)
        assert row is not None
        assert row.assignee_id is None
    # No longer Fin's: a further end-user message is for the humans.
    user_id = conversation(engine, result.conversation_id)["user"]["id"]
    end_user_says(server, result.conversation_id, user_id, "<p>Hello?</p>")
    assert engine.sync(result.conversation_id).ok
    assert len(answerer.asked) == 1


# --- (1) token renewal --------------------------------------------------------------------------


def test_a_revoked_token_is_replaced_and_the_run_succeeds(
    server: LiveServer, make_engine: MakeEngine, gate: Gate
) -> None:
    engine = make_engine()
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    old_token = engine.connection.current_token
    assert old_token is not None and engine.connection.token_fetches == 1
    with server.db.transaction() as session:
        revoke_access_token(session, old_token)

    result = engine.sync(started.conversation_id)

    assert result.ok, result.error
    assert result.attempts == 1
    assert gate.statuses("/conversation")[-2:] == [401, 200]
    assert engine.connection.token_fetches == 2
    assert engine.connection.current_token != old_token
    assert engine.errors.entries() == []


def test_a_403_also_renews_the_token_once(make_engine: MakeEngine, gate: Gate) -> None:
    engine = make_engine()
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    gate.failures.append(("/messages", 403))

    result = engine.sync(started.conversation_id)

    assert result.ok, result.error
    assert result.attempts == 1
    assert gate.statuses("/messages")[-2:] == [403, 200]
    assert engine.connection.token_fetches == 2


def test_a_second_refusal_is_not_retried_again(make_engine: MakeEngine, gate: Gate) -> None:
    engine = make_engine()
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    gate.failures += [("/messages", 401), ("/messages", 401)]

    result = engine.sync(started.conversation_id)

    assert not result.ok
    assert gate.statuses("/messages")[-2:] == [401, 401]
    assert engine.connection.token_fetches == 2
    assert [(e.operation, e.status) for e in engine.errors.entries()] == [("get_messages", 401)]


# --- (2) retries of failed runs ------------------------------------------------------------------


def test_a_failed_run_is_retried_until_it_succeeds(
    server: LiveServer, make_engine: MakeEngine, gate: Gate
) -> None:
    answerer = ScriptedAnswerer()
    engine = make_engine(answerer)
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    cid = started.conversation_id
    end_user_says(server, cid, conversation(engine, cid)["user"]["id"], "<p>Still there?</p>")
    gate.failures += [
        ("/conversation", httpx.ConnectError("connection refused")),
        ("/messages", 503),
        ("/messages", httpx.ReadTimeout("timed out")),
        # Fin's reply was written, the update failed: the retry must not write it twice.
        ("PUT /conversation", 502),
    ]

    result = engine.sync(cid)

    assert result.ok, result.error
    assert result.attempts == 5
    entries = engine.errors.entries()
    assert [(e.conversation_id, e.operation, e.status) for e in reversed(entries)] == [
        (cid, "get_conversation", None),
        (cid, "get_messages", 503),
        (cid, "get_messages", None),
        (cid, "update_conversation", 502),
    ]
    assert all("retrying" in e.message for e in entries)
    fin_replies = [m for m in messages(engine, cid) if m["author"]["user_type"] == "agent"]
    assert len(fin_replies) == 2


def test_a_run_gives_up_after_the_last_retry_and_logs_it(
    make_engine: MakeEngine, gate: Gate
) -> None:
    engine = make_engine(retries=3)
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    gate.failures += [("/conversation", 503)] * 10

    begun = time.monotonic()
    result = engine.sync(started.conversation_id)

    assert not result.ok
    assert result.attempts == 4
    assert time.monotonic() - begun >= 3 * 0.05
    entries = engine.errors.entries()
    assert [(e.operation, e.status) for e in entries] == [("get_conversation", 503)] * 4
    assert "gave up" in entries[0].message
    assert all("retrying" in e.message for e in entries[1:])


def test_a_client_error_is_not_retried(make_engine: MakeEngine) -> None:
    engine = make_engine()

    result = engine.sync("conv_does_not_exist")

    assert not result.ok
    assert result.attempts == 1
    assert [(e.operation, e.status) for e in engine.errors.entries()] == [("get_conversation", 404)]


def test_the_error_log_is_bounded(make_engine: MakeEngine) -> None:
    engine = make_engine(errors=ErrorLog(limit=3))
    for _ in range(5):
        engine.sync("conv_does_not_exist")
    assert len(engine.errors.entries()) == 3


# --- (3) after_id and messages already seen ------------------------------------------------------


def test_the_next_sync_asks_only_for_messages_after_the_last_one_seen(
    server: LiveServer, make_engine: MakeEngine, gate: Gate
) -> None:
    answerer = ScriptedAnswerer()
    engine = make_engine(answerer)
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    cid = started.conversation_id
    first_id = messages(engine, cid)[0]["id"]
    user_id = conversation(engine, cid)["user"]["id"]
    new_id = end_user_says(server, cid, user_id, "<p>One more thing</p>")

    assert engine.sync(cid).ok
    assert engine.sync(cid).ok

    sent = [r.url.params.get("after_id") for r in gate.requests("/messages") if r.method == "GET"]
    assert sent[-2:] == [first_id, new_id]
    assert [[m["id"] for m in asked] for asked in answerer.asked][1:] == [[new_id]]


def test_messages_seen_before_are_skipped_when_the_helpdesk_ignores_after_id(
    server: LiveServer, make_engine: MakeEngine, gate: Gate
) -> None:
    answerer = ScriptedAnswerer()
    engine = make_engine(answerer)
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    cid = started.conversation_id
    gate.ignore_after_id = True

    nothing_new = engine.sync(cid)
    new_id = end_user_says(server, cid, conversation(engine, cid)["user"]["id"], "<p>And?</p>")
    something_new = engine.sync(cid)

    assert nothing_new.ok and nothing_new.new_messages == []
    assert something_new.ok
    assert [m["id"] for m in something_new.new_messages] == [new_id]
    assert [[m["id"] for m in asked] for asked in answerer.asked][1:] == [[new_id]]


# --- debounce and lock ---------------------------------------------------------------------------


def test_a_burst_of_notifications_makes_one_run(
    server: LiveServer, make_engine: MakeEngine, gate: Gate
) -> None:
    answerer = ScriptedAnswerer()
    engine = make_engine(answerer, debounce=0.3)
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    cid = started.conversation_id
    end_user_says(server, cid, conversation(engine, cid)["user"]["id"], "<p>Hello?</p>")
    before = len(gate.requests("/conversation"))

    for _ in range(5):
        engine.notify(cid)
    assert engine.wait_idle(10)

    gets = [r for r in gate.requests("/conversation")[before:] if r.method == "GET"]
    assert len(gets) == 1
    assert len(answerer.asked) == 2


def test_runs_of_one_conversation_do_not_overlap(
    server: LiveServer, make_engine: MakeEngine
) -> None:
    answerer = ScriptedAnswerer(delay=0.3)
    engine = make_engine(answerer)
    started = engine.start_conversation(new_user(), "<p>Hi</p>")
    assert started.ok and started.conversation_id is not None
    cid = started.conversation_id
    end_user_says(server, cid, conversation(engine, cid)["user"]["id"], "<p>Hello?</p>")

    threads = [threading.Thread(target=engine.sync, args=(cid,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # Without the lock both runs would see the new message and answer it twice.
    assert len(answerer.asked) == 2
    fin_replies = [m for m in messages(engine, cid) if m["author"]["user_type"] == "agent"]
    assert len(fin_replies) == 2
