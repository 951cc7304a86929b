"""findesk over HTTP beside a bare ASGI app doing the same database work, in the same run:
requests per second, latency, and server CPU per request, measured by wrk and /proc.

Run: ``.venv/bin/python bench/http_vs_bare.py [--backend sqlite|postgres] [--connections N]
[--duration S] [--warmup S] [--rounds N] [--scenario NAME ...] [--workers N] [--json]``

``--workers N`` (PostgreSQL): findesk as ``findesk serve --workers N`` runs it, and the bare app
in as many uvicorn worker processes; each server's CPU is that of all its processes.

1. Migrates a database, a SQLite file in a temporary folder or, with ``--backend postgres``, one
   on a throwaway PostgreSQL cluster (started as the tests start theirs), and seeds it through
   the domain services: an OAuth client for Fin, an agent with a password and a personal token, a
   tagged 10-message conversation that Fin owns, one that Fin's create-message grows, one that the
   agent owns and replies in, and 45 more for the inbox's queue.
2. Starts two child processes: findesk exactly as ``findesk serve`` runs it (one uvicorn worker,
   the notifier in process, no webhook configured), and the bare app: a raw ASGI callable served
   by uvicorn with findesk's own uvicorn settings, answering the same paths with the database work
   the answer needs (stdlib sqlite3 or psycopg, one connection per thread of a pool as large as
   findesk's, ``FINDESK_REQUEST_THREADS``) and nothing else: no authentication, validation,
   sanitising, ORM, ledger, history or events. Fetches Fin's bearer token and signs in once
   through the sign-in form for the inbox's session cookie.
3. Each scenario: one request to each server, checked; ``--warmup`` s of wrk on each; then
   ``--rounds`` rounds of one wrk run on each, one server at a time, with the same script,
   headers, connections and duration, alternating which goes first so that drift falls on both.
   Every run is metered from /proc: the server's CPU (its process and any it starts), the
   database server's on PostgreSQL, wrk's, and that of every other process on the machine.
4. Prints, for each scenario and server, the median round by CPU per request: requests per
   second, p50 and p99 latency (wrk's histogram), failed requests (transport errors and any
   status but the one expected), server CPU per request, and findesk's CPU per request over the
   bare app's; then the errors a server logged during the measured runs (a request that failed
   on its side, seen by wrk or not). ``--json``: one JSON object, every round included.

Exit status: 0, or 1 when a request failed, 2 when the set-up failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import secrets
import sqlite3
import string
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import uvicorn
from sqlalchemy import select

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_client, issue_agent_token
from findesk.conversations.models import Message
from findesk.conversations.service import (
    Author,
    NewMessage,
    add_message,
    hand_over,
    open_conversation,
    set_tags,
    take_over,
)
from findesk.kit.actor import FIN
from findesk.kit.actor import agent as agent_actor
from findesk.kit.db import Database
from findesk.kit.serving import server_config
from findesk.kit.settings import Settings
from findesk.migrations import upgrade
from findesk.users.service import create_user

from benchkit import (
    ChildProcess,
    CpuSource,
    CpuUse,
    ProcessTree,
    ReapedChildren,
    SetupError,
    WrkResult,
    bench_folder,
    busiest,
    cell,
    cpu_meter,
    errors_logged,
    fin_token,
    findesk_env,
    free_port,
    log,
    print_busy_warning,
    require_wrk,
    rounded,
    run_lifespan,
    run_main,
    run_wrk,
    send_json,
    serve_command,
    sign_in,
    throwaway_postgres,
)

SERVE_BARE = "_serve-bare"  # internal sub-command: this file, run as the bare app's server
STARTUP_TIMEOUT = 60.0
SETTLE = 0.3  # s after each run, still metered: work a server defers (the ledger's batch) counts
PASSWORD = "correct horse battery staple"
AGENT_EMAIL = "alex@bench.example"
QUEUE_CONVERSATIONS = 45  # besides the three the scenarios use: the inbox lists 25 a page
QUEUE_PAGE = 25  # the inbox's page size (findesk.inbox.endpoints.PAGE_SIZE)
# As many threads as findesk runs its sync endpoints in (FINDESK_REQUEST_THREADS' default).
BARE_THREADS: int = Settings.model_fields["request_threads"].default
FINDESK, BARE = "findesk", "bare"


# --- the bare app ---------------------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, Any]  # HTTP status, JSON payload

# With ? placeholders; on PostgreSQL they become %s.
SQL = {
    "conversation": """
        SELECT c.id, c.status, c.title, c.attributes, c.created_at, c.updated_at,
               u.id, u.name, u.email, u.photo_url, u.attributes,
               a.id, a.name, a.email, a.photo_url, a.alias
        FROM conversations c JOIN end_users u ON u.id = c.user_id
        LEFT JOIN agents a ON a.id = c.assignee_id
        WHERE c.id = ?""",
    "tags": "SELECT tag FROM conversation_tags WHERE conversation_id = ? ORDER BY position",
    # The conversation's end user, and the seq of after_id if it is one of its messages.
    "messages_start": """
        SELECT u.id, u.name, u.email, u.photo_url, u.attributes,
               (SELECT seq FROM messages WHERE id = ? AND conversation_id = ?)
        FROM conversations c JOIN end_users u ON u.id = c.user_id
        WHERE c.id = ?""",
    "messages": """
        SELECT id, conversation_id, body, author_type, author_agent_id, visibility, created_at,
               attachments
        FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq""",
    "touch": "UPDATE conversations SET updated_at = ?, last_activity_at = ? WHERE id = ?",
    "insert": """
        INSERT INTO messages (id, conversation_id, object_id, message_type, body, author_type,
                              author_user_id, author_agent_id, visibility, attachments,
                              created_at, after_take_over)
        VALUES (?, ?, ?, 'comment', ?, ?, ?, ?, 'public', '[]', ?, FALSE)""",
    "queue_page": """
        SELECT c.id, c.status, c.title, c.attributes, c.created_at, c.updated_at,
               u.id, u.name, u.email, u.photo_url, u.attributes,
               a.id, a.name, a.email, a.photo_url, a.alias, c.last_activity_at
        FROM conversations c JOIN end_users u ON u.id = c.user_id
        LEFT JOIN agents a ON a.id = c.assignee_id
        WHERE c.status = 'open'
        ORDER BY c.last_activity_at DESC, c.id DESC LIMIT ?""",
    "count_waiting": (
        "SELECT count(*) FROM conversations WHERE status = 'open' AND assignee_id IS NULL"
    ),
    "count_mine": "SELECT count(*) FROM conversations WHERE status = 'open' AND assignee_id = ?",
    "count_fin": """
        SELECT count(*) FROM conversations
        WHERE status = 'open' AND assignee_id IN (SELECT id FROM agents WHERE is_bot)""",
    "count_all": "SELECT count(*) FROM conversations WHERE status = 'open'",
    "agents": """
        SELECT id, name, email, photo_url, alias FROM agents
        WHERE active ORDER BY is_bot DESC, name""",
}


class BareDatabase:
    """One connection per thread, each statement's SQL by hand, transactions as findesk has
    them: reads in a transaction ended by a rollback, writes committed; on SQLite, findesk's
    pragmas, and writers queued on a lock of the process and BEGIN IMMEDIATE, as findesk's."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._local = threading.local()
        self._write_lock = threading.Lock()

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.postgres else text

    def now(self) -> Any:
        """The time as findesk stores it: SQLAlchemy's text form on SQLite."""
        now = datetime.now(UTC)
        return now if self.postgres else now.replace(tzinfo=None).isoformat(" ", "microseconds")

    # The cursors are sqlite3's or psycopg's: Any, since their signatures differ.
    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self.postgres:
                import psycopg

                connection = psycopg.connect(self.url)
            else:
                connection = sqlite3.connect(
                    self.url.removeprefix("sqlite:///"), isolation_level=None, timeout=30
                )
                for pragma in ("synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
                    connection.execute(f"PRAGMA {pragma}")
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Any]:
        connection = self._connection()
        cursor = connection.cursor()
        if not self.postgres:  # psycopg begins a transaction by itself
            cursor.execute("BEGIN")
        try:
            yield cursor
        finally:
            cursor.close()
            connection.rollback()

    @contextlib.contextmanager
    def write(self) -> Iterator[Any]:
        connection = self._connection()
        with self._write_lock if not self.postgres else contextlib.nullcontext():
            cursor = connection.cursor()
            if not self.postgres:
                cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                cursor.close()


def iso(value: Any) -> str | None:
    """A time as the Fin API writes it; SQLite hands back SQLAlchemy's text form."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    text = str(value)  # YYYY-MM-DD HH:MM:SS[.ffffff]
    return f"{text[:10]}T{text[11:19]}.{text[20:23] or '000'}Z"


def json_value(value: Any) -> Any:
    """A JSON column: text on SQLite, decoded already by psycopg."""
    return json.loads(value) if isinstance(value, str) else value


def end_user_json(row: Sequence[Any]) -> dict[str, Any]:
    user_id, name, email, photo_url, attributes = row
    return {
        "id": user_id,
        "user_type": "end_user",
        "name": name,
        "email": email,
        "photo_url": photo_url,
        "attributes": json_value(attributes),
    }


def agent_json(row: Sequence[Any]) -> dict[str, Any]:
    agent_id, name, email, photo_url, alias = row
    return {
        "id": agent_id,
        "user_type": "agent",
        "name": name,
        "email": email,
        "photo_url": photo_url,
        "alias": alias,
    }


def conversation_json(row: Sequence[Any], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row[0],
        "status": row[1],
        "user": end_user_json(row[6:11]),
        "title": row[2],
        "tags": tags,
        "attributes": json_value(row[3]),
        "assignee": agent_json(row[11:16]) if row[11] is not None else None,
        "created_at": iso(row[4]),
        "updated_at": iso(row[5]),
    }


NOT_FOUND: Answer = (404, {"title": "Not Found", "status": 404})


class BareApp:
    """A raw ASGI callable that answers findesk's paths of the scenarios, trusting every
    request: each endpoint runs its SQL in a thread of its pool and answers JSON."""

    def __init__(self, database_url: str, agent_id: str) -> None:
        self.db = BareDatabase(database_url)
        self.agent_id = agent_id  # the author of the agent API's replies, and "mine"
        self.sql = {name: self.db.sql(text) for name, text in SQL.items()}
        self._pool = ThreadPoolExecutor(max_workers=BARE_THREADS, thread_name_prefix="bare")

    def _in(self, values: Sequence[str]) -> str:
        return self.db.sql(", ".join("?" * len(values)))

    def get_conversation(self, conversation_id: str) -> Answer:
        with self.db.read() as cursor:
            cursor.execute(self.sql["conversation"], (conversation_id,))
            row = cursor.fetchone()
            if row is None:
                return NOT_FOUND
            cursor.execute(self.sql["tags"], (conversation_id,))
            tags = [tag for (tag,) in cursor.fetchall()]
        return 200, conversation_json(row, tags)

    def get_messages(self, conversation_id: str, after_id: str | None) -> Answer:
        with self.db.read() as cursor:
            cursor.execute(self.sql["messages_start"], (after_id, conversation_id, conversation_id))
            start = cursor.fetchone()
            if start is None:
                return NOT_FOUND
            cursor.execute(self.sql["messages"], (conversation_id, start[5] or 0))
            rows = cursor.fetchall()
            agent_ids = sorted({row[4] for row in rows if row[4] is not None})
            agents: dict[str, dict[str, Any]] = {}
            if agent_ids:
                cursor.execute(
                    "SELECT id, name, email, photo_url, alias FROM agents "
                    f"WHERE id IN ({self._in(agent_ids)})",
                    agent_ids,
                )
                agents = {row[0]: agent_json(row) for row in cursor.fetchall()}
        user = end_user_json(start[:5])
        return 200, [
            {
                "id": message_id,
                "conversation_id": conversation,
                "message_type": "comment",
                "body": body,
                "author": user if author_type == "end_user" else agents[agent_id],
                "visibility": visibility,
                "created_at": iso(created_at),
                "attachments": json_value(attachments),
            }
            for (
                message_id,
                conversation,
                body,
                author_type,
                agent_id,
                visibility,
                created_at,
                attachments,
            ) in rows
        ]

    def add_message(
        self,
        conversation_id: str,
        body: str,
        author: tuple[str, str],
        object_id: str | None,
    ) -> Answer:
        """Insert a message (the columns findesk sets) and touch its conversation."""
        author_type, author_id = author
        message_id = "msg_" + secrets.token_hex(10)
        now = self.db.now()
        with self.db.write() as cursor:
            cursor.execute(self.sql["touch"], (now, now, conversation_id))
            if cursor.rowcount != 1:
                return NOT_FOUND
            user_id = author_id if author_type == "end_user" else None
            agent_id = author_id if author_type == "agent" else None
            cursor.execute(
                self.sql["insert"],
                (message_id, conversation_id, object_id, body, author_type, user_id, agent_id, now),
            )
        return 201, {
            "id": message_id,
            "conversation_id": conversation_id,
            "message_type": "comment",
            "body": body,
            "author": {"id": author_id, "user_type": author_type},
            "visibility": "public",
            "created_at": iso(now),
            "attachments": [],
        }

    def create_message(self, body: bytes) -> Answer:
        """Fin's create_message."""
        data = json.loads(body)
        author = (data["author"]["user_type"], data["author"]["id"])
        return self.add_message(data["conversation_id"], data["body"], author, data["object_id"])

    def reply(self, conversation_id: str, body: bytes) -> Answer:
        """The agent API's reply, by the agent."""
        data = json.loads(body)
        return self.add_message(conversation_id, data["body"], ("agent", self.agent_id), None)

    def queue(self) -> Answer:
        """The inbox's queue "all": its first page, the counts of every queue, the agents."""
        with self.db.read() as cursor:
            cursor.execute(self.sql["queue_page"], (QUEUE_PAGE + 1,))
            rows = cursor.fetchall()
            tags: dict[str, list[str]] = {}
            if ids := [row[0] for row in rows]:
                cursor.execute(
                    "SELECT conversation_id, tag FROM conversation_tags "
                    f"WHERE conversation_id IN ({self._in(ids)}) ORDER BY position",
                    ids,
                )
                for conversation_id, tag in cursor.fetchall():
                    tags.setdefault(conversation_id, []).append(tag)
            counts = {}
            for queue in ("waiting", "mine", "fin", "all"):
                cursor.execute(
                    self.sql[f"count_{queue}"], (self.agent_id,) if queue == "mine" else ()
                )
                counts[queue] = cursor.fetchone()[0]
            cursor.execute(self.sql["agents"])
            agents = [agent_json(row) for row in cursor.fetchall()]
        items = [conversation_json(row, tags.get(row[0], [])) for row in rows[:QUEUE_PAGE]]
        return 200, {"items": items, "counts": counts, "agents": agents}

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> Callable[[], Answer] | None:
        def param(name: str) -> str | None:
            return query.get(name, [None])[0]

        reply_prefix, reply_suffix = "/api/v1/conversations/", "/messages"
        match method, path:
            case "GET", "/healthz":
                return lambda: (200, {"status": "ok"})
            case "GET", "/api/fin/conversation":
                return functools.partial(self.get_conversation, param("conversation_id") or "")
            case "GET", "/api/fin/messages":
                conversation_id = param("conversation_id") or ""
                return functools.partial(self.get_messages, conversation_id, param("after_id"))
            case "POST", "/api/fin/messages":
                return functools.partial(self.create_message, body)
            case "POST", _ if path.startswith(reply_prefix) and path.endswith(reply_suffix):
                conversation_id = path[len(reply_prefix) : -len(reply_suffix)]
                return functools.partial(self.reply, conversation_id, body)
            case "GET", "/inbox":
                return self.queue
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self._stop_pool)
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = parse_qs(scope["query_string"].decode("latin-1"))
        handler = self._route(scope["method"], scope["path"], query, body)
        if handler is None:
            status, payload = NOT_FOUND
        else:
            try:
                status, payload = await asyncio.get_running_loop().run_in_executor(
                    self._pool, handler
                )
            except Exception as exc:  # a broken request or set-up: say what, for the check
                status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        await send_json(send, status, payload)

    def _stop_pool(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


BARE_CONFIG = "BENCH_BARE_CONFIG"  # the bare app's configuration file, for its workers


def bare_app_from_environment() -> BareApp:
    """The bare app of the configuration file named by ``BENCH_BARE_CONFIG`` (each worker
    process builds its own, as ``findesk serve --workers`` does)."""
    config = json.loads(Path(os.environ[BARE_CONFIG]).read_text())
    return BareApp(config["database_url"], config["agent_id"])


def serve_bare(config_path: str) -> None:
    """Serve the bare app with uvicorn configured as ``findesk serve`` configures it, in as
    many worker processes as findesk's."""
    config = json.loads(Path(config_path).read_text())
    workers = int(config.get("workers", 1))
    os.environ[BARE_CONFIG] = config_path
    if workers == 1:
        server = uvicorn.Server(
            server_config(
                bare_app_from_environment(), Settings(), host="127.0.0.1", port=int(config["port"])
            )
        )
        server.run()
        return
    from uvicorn.supervisors import Multiprocess

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # (workers import this module)
    many = server_config(
        "http_vs_bare:bare_app_from_environment",
        Settings(),
        host="127.0.0.1",
        port=int(config["port"]),
        workers=workers,
        factory=True,
    )
    Multiprocess(many, sockets=[many.bind_socket()]).run()


# --- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    client_id: str
    client_secret: str
    agent_id: str
    agent_token: str
    user_id: str
    read_id: str  # the 10-message conversation, tagged, Fin's
    after_id: str  # its last-but-one message: get_messages after it answers one message
    last_id: str  # its last message
    fin_write_id: str  # the conversation Fin's create-message grows (the end user's messages)
    reply_id: str  # the agent's conversation, which the agent API's replies grow


def seed(url: str) -> Seed:
    """Migrate, then create the data through the domain services, as findesk itself would."""
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            fin = ensure_fin_agent(session, Settings.model_fields["fin_agent_email"].default)
            agent = create_agent(session, email=AGENT_EMAIL, name="Alex Agent", password=PASSWORD)
            _, agent_token = issue_agent_token(session, agent, label="bench")
            client, secret = create_client(session, "bench")
            users = [
                create_user(
                    session,
                    object_id=f"bench-user-{n}",
                    name=f"Customer {n}",
                    email=f"customer{n}@example.com",
                )[0]
                for n in range(8)
            ]
            user = users[0]

            def start(n: int, title: str, owner: str, tags: Sequence[str] = ()) -> str:
                customer = users[n % len(users)]
                conversation, _, _ = open_conversation(
                    session,
                    user_id=customer.id,
                    title=title,
                    assignee_id=fin.id,
                    first=NewMessage(Author("end_user", customer.id), "<p>Hello, I need help.</p>"),
                    actor=FIN,
                )
                if owner == "waiting":
                    hand_over(session, conversation.id, FIN)
                elif owner == "agent":
                    take_over(session, conversation.id, agent.id, agent_actor(agent.id))
                if tags:
                    set_tags(session, conversation, list(tags), FIN)
                return conversation.id

            for n in range(QUEUE_CONVERSATIONS):
                owner = ("fin", "waiting", "agent")[n % 3]
                start(n, f"Question {n} about an order", owner, ("order",) if n % 2 else ())
            read_id = start(0, "Refund for order 1234", "fin", ("refund", "priority"))
            fin_author, user_author = Author("agent", fin.id), Author("end_user", user.id)
            for n in range(1, 10):
                author = fin_author if n % 2 else user_author
                add_message(session, read_id, NewMessage(author, f"<p>Message {n}</p>"), FIN)
            fin_write_id = start(0, "Grown by Fin's create-message", "fin")
            reply_id = start(0, "Grown by the agent's replies", "agent")
            ids = (client.id, agent.id, user.id)
        with db.read_session() as session:
            last_two = session.scalars(
                select(Message.id)
                .where(Message.conversation_id == read_id)
                .order_by(Message.seq.desc())
                .limit(2)
            ).all()
        client_id, agent_id, user_id = ids
        return Seed(
            client_id=client_id,
            client_secret=secret,
            agent_id=agent_id,
            agent_token=agent_token,
            user_id=user_id,
            read_id=read_id,
            after_id=last_two[1],
            last_id=last_two[0],
            fin_write_id=fin_write_id,
            reply_id=reply_id,
        )
    finally:
        db.dispose()


# --- the scenarios --------------------------------------------------------------------------

# Every script counts the answers whose status is not the one expected, by class, so that a
# failure is never taken for a fast answer (wrk itself counts only transport errors and 4xx/5xx).
UNEXPECTED = ("s1xx", "s2xx", "s3xx", "s4xx", "s5xx")
EXPECT_LUA = string.Template("""
s1xx, s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0, 0
response = function(status, headers, body)
  if status ~= $status then
    local class = "s" .. math.floor(status / 100) .. "xx"
    _G[class] = _G[class] + 1
  end
end
""")

# Each request a new body (a unique object_id: the run's tag, wrk's thread and a counter).
CREATE_MESSAGE_LUA = string.Template("""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(
    '{"conversation_id": "$conversation", "body": "<p>Any news on my order? (%d)</p>", '
      .. '"author": {"id": "$user", "user_type": "end_user"}, "object_id": "$tag-%d-%d"}',
    n, thread_no, n))
end
""")

REPLY_LUA = string.Template("""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(
    '{"body": "<p>On it: reply %d of thread %d ($tag).</p>", "visibility": "public"}',
    n, thread_no))
end
""")


@dataclass(frozen=True)
class Scenario:
    key: str  # as --scenario names it
    title: str
    method: str
    target: str  # path and query
    expected: int  # the status every answer must have
    headers: tuple[str, ...]  # sent with every request, to both servers
    requests_lua: string.Template | None = None  # builds the requests ($tag: the run's); None: GET
    # The body of the request checked before the runs (a new one for each server).
    check_body: Callable[[], dict[str, Any]] | None = None
    # Whether the checked answer is right (beyond its status), by server.
    valid: Callable[[str, httpx.Response], bool] = lambda _server, _response: True

    def lua(self, tag: str) -> str:
        requests = "" if self.requests_lua is None else self.requests_lua.substitute(tag=tag)
        return requests + EXPECT_LUA.substitute(status=self.expected)


def scenarios(seed: Seed, fin_token: str, session_cookie: str) -> list[Scenario]:
    fin = (f"Authorization: Bearer {fin_token}",)
    agent = (f"Authorization: Bearer {seed.agent_token}",)
    messages_query = urlencode({"conversation_id": seed.read_id, "after_id": seed.after_id})
    return [
        Scenario(
            "conversation",
            "Fin: GET /conversation",
            "GET",
            f"/api/fin/conversation?conversation_id={seed.read_id}",
            200,
            fin,
            valid=lambda _server, r: r.json()["tags"] == ["refund", "priority"],
        ),
        Scenario(
            "messages",
            "Fin: GET /messages after_id",
            "GET",
            f"/api/fin/messages?{messages_query}",
            200,
            fin,
            valid=lambda _server, r: [m["id"] for m in r.json()] == [seed.last_id],
        ),
        Scenario(
            "create-message",
            "Fin: POST /messages",
            "POST",
            "/api/fin/messages",
            201,
            fin,
            requests_lua=string.Template(
                CREATE_MESSAGE_LUA.safe_substitute(
                    conversation=seed.fin_write_id, user=seed.user_id
                )
            ),
            check_body=lambda: {
                "conversation_id": seed.fin_write_id,
                "body": "<p>Any news on my order?</p>",
                "author": {"id": seed.user_id, "user_type": "end_user"},
                "object_id": f"check-{uuid.uuid4().hex}",
            },
            valid=lambda _server, r: r.json()["conversation_id"] == seed.fin_write_id,
        ),
        Scenario(
            "reply",
            "agent API: reply",
            "POST",
            f"/api/v1/conversations/{seed.reply_id}/messages",
            201,
            agent,
            requests_lua=REPLY_LUA,
            check_body=lambda: {"body": "<p>On it.</p>", "visibility": "public"},
            valid=lambda _server, r: r.json()["conversation_id"] == seed.reply_id,
        ),
        Scenario(
            "inbox",
            "inbox: GET /inbox?queue=all",
            "GET",
            "/inbox?queue=all",
            200,
            (f"Cookie: findesk_session={session_cookie}",),
            valid=lambda server, r: (
                "Refund for order 1234" in r.text
                if server == FINDESK
                else len(r.json()["items"]) == QUEUE_PAGE
            ),
        ),
    ]


SCENARIO_KEYS = ("conversation", "messages", "create-message", "reply", "inbox")


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Run:
    """One metered wrk run on one server."""

    wrk: WrkResult
    server: CpuUse  # the server's process tree
    database: CpuUse | None  # PostgreSQL's, when it is the backend
    client: CpuUse  # wrk's
    # What the server logged as errors meanwhile, by kind: requests that failed on its side,
    # whether or not the client saw it (one cut off as wrk closes its connections at the end).
    errors_logged: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.wrk.socket_errors + sum(self.wrk.counters.values())

    def per_request_ms(self, use: CpuUse | None) -> float | None:
        if use is None or use.target is None or not self.wrk.requests:
            return None
        return use.target / self.wrk.requests * 1000

    @property
    def cpu_ms(self) -> float | None:
        return self.per_request_ms(self.server)

    @property
    def db_ms(self) -> float | None:
        return self.per_request_ms(self.database)

    @property
    def client_percent(self) -> float | None:
        """wrk's CPU, in % of one core."""
        if self.client.target is None or not self.client.elapsed:
            return None
        return 100 * self.client.target / self.client.elapsed

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.wrk.requests,
            "seconds": round(self.wrk.seconds, 3),
            "requests_per_second": round(self.wrk.rate, 1),
            "p50_ms": round(self.wrk.p50 * 1000, 3),
            "p95_ms": round(self.wrk.p95 * 1000, 3),
            "p99_ms": round(self.wrk.p99 * 1000, 3),
            "max_ms": round(self.wrk.max * 1000, 3),
            "failed": self.failed,
            "socket_errors": self.wrk.socket_errors,
            "unexpected_statuses": {k[1:]: v for k, v in self.wrk.counters.items() if v},
            "server_errors_logged": self.errors_logged,
            "server_cpu_ms_per_request": rounded(self.cpu_ms, 4),
            "database_cpu_ms_per_request": rounded(self.db_ms, 4),
            "wrk_cpu_percent_of_a_core": rounded(self.client_percent, 1),
            "other_processes_cpu_percent_of_machine": rounded(self.server.others_percent, 1),
        }


def median_run(runs: Sequence[Run]) -> Run:
    """The median round by server CPU per request (by throughput where CPU is unknown)."""

    def key(run: Run) -> float:
        return run.cpu_ms if run.cpu_ms is not None else -run.wrk.rate

    return sorted(runs, key=key)[len(runs) // 2]


@dataclass
class Outcome:
    """One scenario's rounds on each server."""

    scenario: Scenario
    runs: dict[str, list[Run]] = field(default_factory=dict)  # by server

    def median(self, server: str) -> Run | None:
        runs = self.runs.get(server)
        return median_run(runs) if runs else None

    @property
    def cpu_ratio(self) -> float | None:
        """findesk's server CPU per request over the bare app's, their median rounds."""
        ours, bare = self.median(FINDESK), self.median(BARE)
        if ours is None or bare is None or ours.cpu_ms is None or not bare.cpu_ms:
            return None
        return ours.cpu_ms / bare.cpu_ms


@dataclass
class Bench:
    """The servers under test and how wrk drives them."""

    folder: Path
    servers: dict[str, ChildProcess]
    database: ProcessTree | None  # PostgreSQL's postmaster and backends
    connections: int

    @property
    def ours(self) -> list[CpuSource]:
        """Every process the benchmark runs: the rest of the machine is "others"."""
        sources: list[CpuSource] = [server.tree() for server in self.servers.values()]
        sources.append(ReapedChildren())  # wrk, once waited for
        if self.database is not None:
            sources.append(self.database)
        return sources

    def check(self, scenario: Scenario, server: str, headers: dict[str, str]) -> None:
        """One request, checked in full, so that a broken set-up fails loudly rather than
        measuring errors."""
        base = self.servers[server].base_url
        response = httpx.request(
            scenario.method,
            base + scenario.target,
            headers=headers,
            json=None if scenario.check_body is None else scenario.check_body(),
            timeout=30,
        )
        if response.status_code != scenario.expected or not scenario.valid(server, response):
            raise SetupError(
                f"{scenario.title} on {server}: HTTP {response.status_code} (expected "
                f"{scenario.expected}): {response.text[:300]}"
            )

    def wrk(self, scenario: Scenario, server: str, seconds: int, tag: str) -> WrkResult:
        return run_wrk(
            self.folder,
            tag,
            self.servers[server].base_url + scenario.target,
            scenario.lua(tag),
            connections=self.connections,
            seconds=seconds,
            headers=scenario.headers,
            counters=UNEXPECTED,
        )

    def measure(self, scenario: Scenario, server: str, seconds: int, tag: str) -> Run:
        process, ours, database = self.servers[server], self.ours, self.database
        log_start = process.log_size()
        with contextlib.ExitStack() as meters:
            server_cpu = meters.enter_context(cpu_meter(process.tree(), ours))
            db_cpu = None if database is None else meters.enter_context(cpu_meter(database, ours))
            client_cpu = meters.enter_context(cpu_meter(ReapedChildren(), ours))
            result = self.wrk(scenario, server, seconds, tag)
            time.sleep(SETTLE)
        errors = errors_logged(process.log_text(since=log_start))
        return Run(result, server_cpu, db_cpu, client_cpu, errors)


def run_scenario(bench: Bench, scenario: Scenario, options: Options) -> Outcome:
    sides = list(bench.servers)  # findesk, then the bare app
    headers = dict(header.split(": ", 1) for header in scenario.headers)
    for server in sides:
        bench.check(scenario, server, headers)
    run_id = uuid.uuid4().hex[:8]
    if options.warmup:
        log(f"{scenario.title}: {options.warmup:g} s warm-up on each server")
        for server in sides:
            bench.wrk(scenario, server, options.warmup, f"{scenario.key}-{server}-warm-{run_id}")
    outcome = Outcome(scenario, {server: [] for server in sides})
    for round_no in range(options.rounds):
        # Alternate which goes first, so that drift falls on both alike.
        for server in sides if round_no % 2 == 0 else sides[::-1]:
            log(f"{scenario.title}: round {round_no + 1}/{options.rounds} on {server}")
            tag = f"{scenario.key}-{server}-{round_no}-{run_id}"
            outcome.runs[server].append(bench.measure(scenario, server, options.duration, tag))
    return outcome


# --- set-up ---------------------------------------------------------------------------------


@dataclass
class Options:
    backend: str
    connections: int
    duration: int  # wrk runs for whole seconds
    warmup: int
    rounds: int
    scenarios: list[str]
    workers: int
    as_json: bool


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections (16)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up (2)")
    parser.add_argument("--rounds", type=int, default=3, help="runs on each server (3)")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_KEYS,
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of each server (1; PostgreSQL)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.duration < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("connections, duration and rounds must be >= 1, warmup >= 0")
    if args.workers < 1:
        parser.error("workers must be >= 1")
    if args.workers > 1 and args.backend != "postgres":
        parser.error("several workers need --backend postgres (SQLite is one process's)")
    chosen = args.scenario or list(SCENARIO_KEYS)
    return Options(
        backend=args.backend,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        scenarios=[key for key in SCENARIO_KEYS if key in chosen],
        workers=args.workers,
        as_json=args.json,
    )


def benchmark(options: Options) -> list[Outcome]:
    require_wrk()
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(bench_folder())
        database: ProcessTree | None = None
        if options.backend == "postgres":
            log("starting a throwaway PostgreSQL cluster ...")
            postgres = stack.enter_context(throwaway_postgres())
            url = postgres.create_database("findesk_bench")
            if postgres.pid is not None:
                database = ProcessTree(postgres.pid)
        else:
            url = f"sqlite:///{folder / 'findesk.db'}"  # where findesk's defaults put it
        log("seeding through the domain services ...")
        seeded = seed(url)

        findesk_port, bare_port = free_port(), free_port()
        database_url = url if options.backend == "postgres" else None
        findesk = ChildProcess(
            "findesk",
            [*serve_command(findesk_port), "--workers", str(options.workers)],
            folder / "findesk.log",
            env=findesk_env(folder, database_url=database_url),
            port=findesk_port,
        )
        config = folder / "bare.json"
        config.write_text(
            json.dumps(
                {
                    "database_url": url,
                    "agent_id": seeded.agent_id,
                    "port": bare_port,
                    "workers": options.workers,
                }
            )
        )
        bare = ChildProcess(
            "bare ASGI app",
            [sys.executable, str(Path(__file__).resolve()), SERVE_BARE, str(config)],
            folder / "bare.log",
            env=findesk_env(folder),  # the same uvicorn settings: findesk's defaults
            port=bare_port,
        )
        log("starting the servers ...")
        for server in (findesk, bare):
            stack.callback(server.stop)
            server.start()
        findesk.wait_ready("/healthz", STARTUP_TIMEOUT)
        bare.wait_ready("/healthz", STARTUP_TIMEOUT)

        bench = Bench(folder, {FINDESK: findesk, BARE: bare}, database, options.connections)
        chosen = [
            scenario
            for scenario in scenarios(
                seeded,
                fin_token(findesk.base_url, seeded.client_id, seeded.client_secret),
                sign_in(findesk.base_url, AGENT_EMAIL, PASSWORD),
            )
            if scenario.key in options.scenarios
        ]
        outcomes = [run_scenario(bench, scenario, options) for scenario in chosen]
        for server in (findesk, bare):
            if not server.alive():
                raise SetupError(f"{server.name} exited; its log ends with:\n{server.log_tail()}")
        return outcomes


# --- the report -----------------------------------------------------------------------------


def all_runs(outcomes: Sequence[Outcome]) -> list[Run]:
    return [run for outcome in outcomes for runs in outcome.runs.values() for run in runs]


def _workers(count: int) -> str:
    return "one uvicorn worker" if count == 1 else f"{count} uvicorn workers"


def print_table(outcomes: Sequence[Outcome], options: Options) -> None:
    cores = os.cpu_count() or 0
    backend = "PostgreSQL" if options.backend == "postgres" else "SQLite"
    rounds = f"{options.rounds} round{'s' if options.rounds > 1 else ''}"
    print(
        f"findesk over HTTP beside a bare ASGI app doing the same database work ({backend}; "
        f"{_workers(options.workers)} each)\nwrk: {options.connections} connections, "
        f"{options.duration:g} s a run after {options.warmup:g} s of warm-up; {rounds}, the "
        f"median shown (by CPU per request)\nPython {platform.python_version()}, {cores} cores, "
        f"shared by wrk, both servers and the database"
    )
    postgres = options.backend == "postgres"
    header = (
        f"\n{'scenario':<30} {'server':<8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'failed':>6} {'CPU ms/req':>10} {'vs bare':>7}"
    ) + (f" {'db ms/req':>9}" if postgres else "")
    print(header)
    print("-" * (len(header) - 1))
    for outcome in outcomes:
        for server in (FINDESK, BARE):
            run = outcome.median(server)
            if run is None:
                continue
            name = outcome.scenario.title if server == FINDESK else ""
            ratio = cell(outcome.cpu_ratio, ".1f", "x") if server == FINDESK else ""
            line = (
                f"{name:<30} {server:<8} {run.wrk.rate:>7.0f} {run.wrk.p50 * 1000:>7.2f} "
                f"{run.wrk.p99 * 1000:>7.2f} {run.failed:>6} {cell(run.cpu_ms, '.3f'):>10} "
                f"{ratio:>7}"
            )
            if postgres:
                line += f" {cell(run.db_ms, '.3f'):>9}"
            print(line)
    print(
        "\nCPU ms/req: the server's CPU time over a run (its process and any it starts, from "
        "/proc), per request;\nvs bare: findesk's over the bare app's."
        + (" db ms/req: PostgreSQL's (postmaster and backends)." if postgres else "")
        + "\nThe bare app trusts every request: no authentication, validation, sanitising, "
        "ORM, ledger, history\nor events; its inbox answers the queue's query in JSON, findesk's "
        "renders the page."
    )
    failures = [
        f"{outcome.scenario.title} on {server}: {run.failed} "
        f"({', '.join(f'{v} x {k[1:]}' for k, v in run.wrk.counters.items() if v) or 'transport'})"
        for outcome in outcomes
        for server, runs in outcome.runs.items()
        for run in runs
        if run.failed
    ]
    for failure in failures:
        print(f"FAILED requests: {failure}")
    for outcome in outcomes:
        for server, runs in outcome.runs.items():
            logged: dict[str, int] = {}
            for run in runs:
                for kind, count in run.errors_logged.items():
                    logged[kind] = logged.get(kind, 0) + count
            if logged:
                kinds = ", ".join(f"{count} x {kind}" for kind, count in logged.items())
                print(f"{server} logged errors during {outcome.scenario.title}: {kinds}")
    print_busy_warning(busiest(run.server.others_percent for run in all_runs(outcomes)))


def to_json(outcomes: Sequence[Outcome], options: Options) -> dict[str, Any]:
    report: dict[str, Any] = {
        "config": {
            "backend": options.backend,
            "connections": options.connections,
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "rounds": options.rounds,
            "workers": options.workers,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "median": "the median round of each server by server CPU per request",
            "other_processes_max_cpu_percent_of_machine": rounded(
                busiest(run.server.others_percent for run in all_runs(outcomes)), 1
            ),
        },
        "scenarios": {},
        "failed": sum(run.failed for run in all_runs(outcomes)),
    }
    for outcome in outcomes:
        entry: dict[str, Any] = {"title": outcome.scenario.title}
        for server, runs in outcome.runs.items():
            median = median_run(runs)
            entry[server] = {**median.to_json(), "rounds": [run.to_json() for run in runs]}
        entry["cpu_per_request_vs_bare"] = rounded(outcome.cpu_ratio, 3)
        report["scenarios"][outcome.scenario.key] = entry
    return report


def main(argv: Sequence[str]) -> int:
    if argv[:1] == [SERVE_BARE]:
        serve_bare(argv[1])
        return 0
    options = parse_args(argv)
    if options.workers != 1:
        log(f"--workers {options.workers}: findesk serve has no --workers yet; measuring one")
    outcomes = benchmark(options)
    if options.as_json:
        print(json.dumps(to_json(outcomes, options), indent=2))
    else:
        print_table(outcomes, options)
    failed = sum(run.failed for run in all_runs(outcomes))
    if failed:
        log(f"FAIL: {failed} requests failed")
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
