"""PostgreSQL at size: findesk on 1,000,000 conversations and 10,000,000 messages.

Run: ``.venv/bin/python bench/pg_size.py [--conversations N] [--messages N] [--duration S]
[--samples N] [--small N] [--workers N] [--json]``

1. Starts a throwaway PostgreSQL cluster (as the tests start theirs), migrates a database and
   seeds it: the Fin bot, 50 human agents (one signs in), an OAuth client for Fin through the
   domain services; then in bulk, with COPY (psycopg), one end user for every five
   conversations, the conversations, their messages, tags on a quarter of them, their history
   (created, handed over, taken over, status) and the outbox's delivered events. The
   conversations span a year, oldest first: of the newest 5%, 90% are still open, of the rest
   5%; of the open ones, 20% wait for a human, 50% are Fin's and 30% the human agents'. Each
   conversation has 1 to ~2x the average number of messages, one has 5,000 and one 10, and
   the messages of neighbouring conversations interleave, as they arrive. Foreign keys are not
   checked during the COPY (the seed makes them right); the queue counts are recounted from the
   table, then ``ANALYZE`` and ``VACUUM``, as autovacuum soon would. Prints how long each part took.
2. Starts ``findesk serve`` as a child process on that database (default settings; with
   ``--workers``, that many processes), fetches Fin's token and signs in through the sign-in
   form for the inbox's session cookie. Unless ``--small 0``, a second database of ``--small``
   conversations (2,000) is seeded the same way and served by a second findesk.
3. Fin API: get_conversation, get_messages with after_id near the end, create_message (an end
   user's, on open conversations) and update_conversation (attributes, and Fin handing over or
   taking back: the queue counts move) on conversations picked at random from thousands, each
   driven by wrk for ``--duration`` s after a warm-up: at 16 connections (the target: p99
   under 20 ms), at 1 (what a request costs without waiting for the others), and at 16 on the
   small database (what the size costs): requests/s, p50 and p99 from wrk's histogram. wrk
   keeps 16 requests in flight: on a machine with few cores they mostly wait for the CPU,
   whatever the database's size, which the other two columns tell apart.
4. Inbox: each queue's first page over HTTP with the session cookie, and the sidebar's counts
   read directly (``queue_counts``), one request at a time, ``--samples`` of each: median and
   p95 (target: under 100 ms), beside the four COUNT(*) queries they replace.
5. get_messages with after_id (its last-but-one message) on the 10-message and on the
   5,000-message conversation, one request at a time: their medians must be within 1.5x.

Exit status: 0 when every figure meets its target and no request failed, 1 otherwise, 2 when
the set-up failed, 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import string
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_client
from findesk.conversations import counts
from findesk.conversations import repository as conversation_repository
from findesk.conversations.service import queue_counts
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade

from benchkit import (
    ChildProcess,
    CpuSource,
    CpuUse,
    ProcessTree,
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
    percentile,
    print_busy_warning,
    require_wrk,
    rounded,
    run_main,
    run_wrk,
    serve_command,
    sign_in,
    throwaway_postgres,
)

PASSWORD = "correct horse battery staple"
AGENT_EMAIL = "alex@bench.example"
HUMANS = 50
USERS_PER_CONVERSATION = 0.2
LONG, SHORT = 5_000, 10  # the messages of the two conversations that after_id compares
CHUNK = 20_000  # conversations generated, and their messages interleaved, at a time
POOL = 2_000  # conversations of each kind that the Fin scenarios pick from
CONNECTIONS = 16
WARMUP = 2  # s of wrk before each measured run
FIN_P99_MS = 20.0
INBOX_MS = 100.0
FLAT_RATIO = 1.5
QUEUES = ("waiting", "mine", "fin", "all")
STARTUP_TIMEOUT = 120.0
SPAN = timedelta(days=365)
SEED = 20261205

# --- seeding --------------------------------------------------------------------------------

_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz"
)


def new_ids(rng: random.Random, prefix: str, count: int) -> list[str]:
    """``count`` ids as findesk makes them (a prefix and 20 random base32 characters), quickly:
    15 random bytes a id, encoded all at once."""
    raw = base64.b32encode(rng.randbytes(15 * count)).translate(_CROCKFORD).decode()
    return [f"{prefix}_{raw[i : i + 20]}" for i in range(0, 24 * count, 24)]


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(sep=" ")


NULL = "\\N"
BODIES = (
    "<p>Hello, I need help with my order {n}.</p>",
    "<p>Thanks for reaching out! Could you tell me the order number?</p>",
    "<p>It is {n}. The parcel never arrived and tracking has not moved for a week.</p>",
    "<p>I am sorry about that. Let me check with the carrier for you.</p>",
    "<p>Any news? I also got charged twice on my card ending {n}.</p>",
    "<p>I have refunded the second charge; it shows within 3 to 5 working days.</p>",
    "<p>Can I change the delivery address to my office instead?</p>",
    "<p>Done: the new address is on the order, and a new parcel leaves today.</p>",
)
TAGS = ("order", "refund", "billing", "shipping", "priority", "bug")


@dataclass
class Seeded:
    """What the measurements need from the seed, and what it took."""

    url: str
    client_id: str
    client_secret: str
    fin_id: str
    agent_id: str  # the agent who signs in
    read_ids: list[str] = field(default_factory=list)  # any conversation
    # (conversation, its last-but-one message): get_messages answers one message
    after_ids: list[tuple[str, str]] = field(default_factory=list)
    # (open conversation, its end user), for create_message
    writable: list[tuple[str, str]] = field(default_factory=list)
    movable: list[str] = field(default_factory=list)  # open, Fin's or waiting: update moves them
    short: tuple[str, str] = ("", "")  # (conversation, last-but-one message)
    long: tuple[str, str] = ("", "")
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Plan:
    """How many conversations and messages, and how the messages spread over them."""

    conversations: int
    messages: int
    lengths: list[int]
    long_index: int
    short_index: int


def plan(conversations: int, messages: int, rng: random.Random) -> Plan:
    others = conversations - 2
    rest = messages - LONG - SHORT
    if others < 1 or rest < others:
        raise SetupError(
            f"--messages must be at least --conversations + {LONG + SHORT - 2:,} "
            "(a message each, and the 5,000- and 10-message conversations)"
        )
    mean = rest / others
    top = max(1, round(2 * mean - 1))
    lengths = [rng.randint(1, top) for _ in range(others)]
    # Bring the total to exactly --messages, a message at a time on random conversations.
    missing = rest - sum(lengths)
    while missing:
        i = rng.randrange(others)
        if missing > 0:
            lengths[i] += 1
            missing -= 1
        elif lengths[i] > 1:
            lengths[i] -= 1
            missing += 1
    long_index, short_index = conversations // 2, conversations // 2 + 1
    lengths[long_index:long_index] = [LONG, SHORT]
    return Plan(conversations, messages, lengths, long_index, short_index)


class Copies:
    """One COPY per table, each on its own connection, open side by side so that a chunk of
    conversations goes in with its messages, history and so on."""

    COLUMNS = {
        "conversations": "id, object_id, user_id, status, title, attributes, assignee_id,"
        " last_user_read_at, handed_over_at, taken_over_at, first_human_reply_at,"
        " last_activity_at, created_at, updated_at",
        "conversation_tags": "conversation_id, tag, position",
        "messages": "seq, id, conversation_id, object_id, message_type, body, author_type,"
        " author_user_id, author_agent_id, visibility, attachments, created_at,"
        " after_take_over, seen_by_fin_at",
        "conversation_history": "id, conversation_id, kind, actor, actor_agent_id,"
        " from_value, to_value, detail, at",
        "outbox_events": "id, conversation_id, reason, state, attempts, created_at,"
        " next_attempt_at, delivered_at, first_failed_at, last_error, lease_owner,"
        " lease_until, delivery_id",
    }

    def __init__(self, dsn: str, stack: contextlib.ExitStack) -> None:
        self.rows = dict.fromkeys(self.COLUMNS, 0)
        self.copies: dict[str, psycopg.Copy] = {}
        for table, columns in self.COLUMNS.items():
            connection = stack.enter_context(psycopg.connect(dsn))
            # The seed's foreign keys are right by construction; checking them row by row
            # would take longer than the COPY itself (a superuser setting: our own cluster).
            connection.execute("SET session_replication_role = replica")
            cursor = stack.enter_context(connection.cursor())
            self.copies[table] = stack.enter_context(
                cursor.copy(f"COPY {table} ({columns}) FROM STDIN")
            )

    def write(self, table: str, lines: list[str]) -> None:
        if lines:
            self.copies[table].write(("\n".join(lines) + "\n").encode())
            self.rows[table] += len(lines)


def sqlalchemy_to_libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def seed(url: str, conversations: int, messages: int) -> Seeded:
    rng = random.Random(SEED)
    started = time.perf_counter()
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            fin = ensure_fin_agent(session, Settings.model_fields["fin_agent_email"].default)
            agent = create_agent(
                session, email=AGENT_EMAIL, name="Alex Agent", password=PASSWORD, role="admin"
            )
            humans = [agent.id] + [
                create_agent(session, email=f"agent{n}@bench.example", name=f"Agent {n}").id
                for n in range(1, HUMANS)
            ]
            client, secret = create_client(session, "bench")
            seeded = Seeded(url, client.id, secret, fin.id, agent.id)
    finally:
        db.dispose()
    seeded.seconds["setup"] = time.perf_counter() - started
    the_plan = plan(conversations, messages, rng)
    dsn = sqlalchemy_to_libpq(url)
    log(f"seeding {conversations:,} conversations and {messages:,} messages with COPY ...")
    started = time.perf_counter()
    users = _copy_users(dsn, rng, max(1, round(conversations * USERS_PER_CONVERSATION)))
    with contextlib.ExitStack() as stack:
        copies = Copies(dsn, stack)
        _copy_conversations(copies, the_plan, rng, users, humans, seeded)
    seeded.rows = {"end_users": len(users), **copies.rows}
    seeded.seconds["copy"] = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as connection:
        for table, column in (
            ("messages", "seq"),
            ("conversation_history", "id"),
            ("outbox_events", "id"),
        ):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" (SELECT max({column}) FROM {table}))"
            )
    db = Database(url)
    try:
        with db.transaction() as session:
            counts.recount(session)
    finally:
        db.dispose()
    seeded.seconds["recount"] = time.perf_counter() - started
    log("ANALYZE, VACUUM ...")
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as connection:
        # The cluster commits asynchronously: until the WAL is flushed, VACUUM cannot tell that
        # the rows are visible to all and leaves the visibility map (which index-only scans
        # rely on) empty. A VACUUM last sets the pages that are.
        connection.execute("CHECKPOINT")
        connection.execute("ANALYZE")
        connection.execute("VACUUM")
    seeded.seconds["analyze_vacuum"] = time.perf_counter() - started
    return seeded


def _copy_users(dsn: str, rng: random.Random, count: int) -> list[str]:
    ids = new_ids(rng, "usr", count)
    base = time.time() - SPAN.total_seconds()
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        columns = "id, object_id, name, email, photo_url, attributes, created_at, updated_at"
        with cursor.copy(f"COPY end_users ({columns}) FROM STDIN") as copy:
            lines = []
            for n, user_id in enumerate(ids):
                at = stamp(base + n * SPAN.total_seconds() / count)
                lines.append(
                    f"{user_id}\tuser-{n}\tCustomer {n}\tcustomer{n}@example.com\t{NULL}"
                    f"\t{{}}\t{at}\t{at}"
                )
                if len(lines) == 10_000:
                    copy.write(("\n".join(lines) + "\n").encode())
                    lines = []
            if lines:
                copy.write(("\n".join(lines) + "\n").encode())
    return ids


def _copy_conversations(
    copies: Copies,
    the_plan: Plan,
    rng: random.Random,
    users: list[str],
    humans: list[str],
    seeded: Seeded,
) -> None:
    total = the_plan.conversations
    now = time.time()
    start = now - SPAN.total_seconds()
    step = SPAN.total_seconds() / total
    fin = seeded.fin_id
    # Which conversations the Fin scenarios pick from: a few thousand of each kind.
    sampled = set(rng.sample(range(total), min(total, POOL * 4)))
    seq = history_id = outbox_id = 0
    for chunk_start in range(0, total, CHUNK):
        chunk = range(chunk_start, min(total, chunk_start + CHUNK))
        conversation_ids = new_ids(rng, "conv", len(chunk))
        conversation_lines: list[str] = []
        tag_lines: list[str] = []
        history_lines: list[str] = []
        outbox_lines: list[str] = []
        # (when, conversation index in chunk, line without seq): sorted by time, then numbered
        pending: list[tuple[float, str, str]] = []
        message_ids = new_ids(rng, "msg", sum(the_plan.lengths[i] for i in chunk))
        next_message = 0
        for offset, i in enumerate(chunk):
            conversation_id = conversation_ids[offset]
            user_id = users[rng.randrange(len(users))]
            created = start + i * step + rng.random() * step
            newest = i >= total * 0.95
            is_open = i in (the_plan.long_index, the_plan.short_index) or (
                rng.random() < (0.9 if newest else 0.05)
            )
            owner_roll = rng.random()
            if i in (the_plan.long_index, the_plan.short_index):
                owner = "fin"
            elif is_open:
                owner = "waiting" if owner_roll < 0.2 else "fin" if owner_roll < 0.7 else "human"
            else:
                owner = "fin" if owner_roll < 0.6 else "human"
            human = humans[rng.randrange(len(humans))] if owner == "human" else None
            assignee = {"fin": fin, "waiting": None, "human": human}[owner]
            length = the_plan.lengths[i]
            span = min(now - created, 60.0 * length * (1 + rng.random() * 20))
            last = created + span
            status = "open" if is_open else rng.choice(("resolved", "closed"))
            handed = created + span * 0.3 if owner != "fin" else None
            taken = created + span * 0.4 if owner == "human" else None
            conversation_lines.append(
                "\t".join(
                    (
                        conversation_id,
                        NULL,
                        user_id,
                        status,
                        f"Question {i} about order {1000 + i}",
                        "{}",
                        assignee or NULL,
                        stamp(last),
                        NULL if handed is None else stamp(handed),
                        NULL if taken is None else stamp(taken),
                        NULL if taken is None else stamp(taken),
                        stamp(last),
                        stamp(created),
                        stamp(last),
                    )
                )
            )
            if i % 4 == 0:
                tag_lines.append(f"{conversation_id}\t{TAGS[i % len(TAGS)]}\t0")
            created_as = json.dumps({"assignee_id": fin, "status": "open"})
            events = [(created, "created", "fin", NULL, "null", created_as)]
            if handed is not None:
                events.append((handed, "handover", "fin", NULL, json.dumps(fin), "null"))
            if taken is not None and human is not None:
                events.append((taken, "take_over", "agent", human, "null", json.dumps(human)))
            if status != "open":
                events.append((last, "status", "fin", NULL, '"open"', json.dumps(status)))
            for at, kind, actor, actor_agent, before, after in events:
                history_id += 1
                history_lines.append(
                    f"{history_id}\t{conversation_id}\t{kind}\t{actor}\t{actor_agent}"
                    f"\t{before}\t{after}\t{{}}\t{stamp(at)}"
                )
            if i % 5 == 0:
                outbox_id += 1
                delivered = stamp(last + 1)
                outbox_lines.append(
                    f"{outbox_id}\t{conversation_id}\tmessage\tdelivered\t1\t{stamp(last)}"
                    f"\t{stamp(last)}\t{delivered}\t{NULL}\t{NULL}\t{NULL}\t{NULL}"
                    f"\tdlv_{outbox_id}"
                )
            ids = message_ids[next_message : next_message + length]
            next_message += length
            for n, message_id in enumerate(ids):
                at = created + span * n / max(1, length - 1) if length > 1 else created
                by_user = n % 2 == 0
                if by_user:
                    author = f"end_user\t{user_id}\t{NULL}"
                elif human is not None and taken is not None and at >= taken:
                    author = f"agent\t{NULL}\t{human}"
                else:
                    author = f"agent\t{NULL}\t{fin}"
                body = BODIES[n % len(BODIES)].format(n=1000 + i)
                pending.append(
                    (
                        at,
                        message_id,
                        f"\t{message_id}\t{conversation_id}\t{NULL}\tcomment\t{body}\t{author}"
                        f"\tpublic\t[]\t{stamp(at)}\tf\t{NULL}",
                    )
                )
            if i in sampled or i in (the_plan.long_index, the_plan.short_index):
                _remember(seeded, the_plan, i, conversation_id, user_id, owner, status, ids)
        pending.sort()
        message_lines = []
        for _at, _id, line in pending:
            seq += 1
            message_lines.append(f"{seq}{line}")
        copies.write("conversations", conversation_lines)
        copies.write("conversation_tags", tag_lines)
        copies.write("messages", message_lines)
        copies.write("conversation_history", history_lines)
        copies.write("outbox_events", outbox_lines)
        done = chunk.stop
        if done % (CHUNK * 10) == 0 or done == total:
            log(f"  {done:,} conversations, {seq:,} messages")


def _remember(
    seeded: Seeded,
    the_plan: Plan,
    i: int,
    conversation_id: str,
    user_id: str,
    owner: str,
    status: str,
    message_ids: list[str],
) -> None:
    if i == the_plan.long_index:
        seeded.long = (conversation_id, message_ids[-2])
        return
    if i == the_plan.short_index:
        seeded.short = (conversation_id, message_ids[-2])
        return
    if len(seeded.read_ids) < POOL:
        seeded.read_ids.append(conversation_id)
    if len(message_ids) >= 2 and len(seeded.after_ids) < POOL:
        seeded.after_ids.append((conversation_id, message_ids[-2]))
    if status == "open" and len(seeded.writable) < POOL:
        seeded.writable.append((conversation_id, user_id))
    if status == "open" and owner != "human" and len(seeded.movable) < POOL:
        seeded.movable.append(conversation_id)


# --- measuring ------------------------------------------------------------------------------

UNEXPECTED = ("unexpected",)
EXPECT_LUA = string.Template("""
unexpected = 0
response = function(status, headers, body)
  if status ~= $status then unexpected = unexpected + 1 end
end
""")
PICK_LUA = """
local seeded = false
local function pick(list)
  if not seeded then
    math.randomseed(7919 * thread_no + 17)
    seeded = true
  end
  return list[math.random(#list)]
end
"""


def lua_list(values: Sequence[str | tuple[str, str]]) -> str:
    """A Lua table literal of strings, or of pairs of strings."""
    items = []
    for value in values:
        if isinstance(value, tuple):
            items.append("{" + ", ".join(json.dumps(v) for v in value) + "}")
        else:
            items.append(json.dumps(value))
    return "{" + ",\n".join(items) + "}"


@dataclass(frozen=True)
class FinScenario:
    key: str
    title: str
    status: int  # every answer's
    lua: string.Template  # the wrk script; $tag: the run's, in the object ids it makes
    probe: Callable[[httpx.Client], httpx.Response]  # one such request, checked first

    def script(self, tag: str) -> str:
        return self.lua.substitute(tag=tag) + EXPECT_LUA.substitute(status=self.status)


def _script(data: str, request: str) -> string.Template:
    # wrk.format with a headers table would send those instead of -H's: set them here.
    return string.Template(
        f'wrk.headers["Content-Type"] = "application/json"\nlocal data = {data}\n{PICK_LUA}\n'
        f"local n = 0\nrequest = function()\n{request}\nend\n".replace("$", "$$").replace(
            "$$tag", "$tag"
        )
    )


def fin_scenarios(seeded: Seeded) -> list[FinScenario]:
    fin, after, (writable, user), movable = (
        seeded.fin_id,
        seeded.after_ids[0],
        seeded.writable[0],
        seeded.movable[0],
    )
    return [
        FinScenario(
            "get_conversation",
            "get_conversation",
            200,
            _script(
                lua_list(seeded.read_ids),
                '  return wrk.format("GET", "/api/fin/conversation?conversation_id="'
                " .. pick(data))",
            ),
            lambda client: client.get(
                "/api/fin/conversation", params={"conversation_id": seeded.read_ids[0]}
            ),
        ),
        FinScenario(
            "get_messages",
            "get_messages after_id",
            200,
            _script(
                lua_list(seeded.after_ids),
                "  local p = pick(data)\n"
                '  return wrk.format("GET", "/api/fin/messages?conversation_id=" .. p[1]'
                ' .. "&after_id=" .. p[2])',
            ),
            lambda client: client.get(
                "/api/fin/messages", params={"conversation_id": after[0], "after_id": after[1]}
            ),
        ),
        FinScenario(
            "create_message",
            "create_message",
            201,
            _script(
                lua_list(seeded.writable),
                "  local p = pick(data)\n"
                "  n = n + 1\n"
                '  return wrk.format("POST", "/api/fin/messages", nil, string.format('
                '\'{"conversation_id": "%s", "body": "<p>Any news on my order? (%d)</p>", \''
                ' .. \'"author": {"id": "%s", "user_type": "end_user"}, \''
                ' .. \'"object_id": "$tag-%d-%d"}\', p[1], n, p[2], thread_no, n))',
            ),
            lambda client: client.post(
                "/api/fin/messages",
                json={
                    "conversation_id": writable,
                    "body": "<p>Any news on my order?</p>",
                    "author": {"id": user, "user_type": "end_user"},
                    "object_id": f"probe-{uuid.uuid4().hex}",
                },
            ),
        ),
        FinScenario(
            "update_conversation",
            "update_conversation",
            200,
            _script(
                lua_list(seeded.movable),
                "  n = n + 1\n"
                f'  local owner = (math.random(2) == 1) and "null" or \'"{fin}"\'\n'
                '  return wrk.format("PUT", "/api/fin/conversation", nil, string.format('
                '\'{"conversation_id": "%s", "attributes": {"bench_n": %d}, "assignee_id": %s}\','
                " pick(data), n, owner))",
            ),
            lambda client: client.put(
                "/api/fin/conversation",
                json={"conversation_id": movable, "attributes": {"bench_n": 0}, "assignee_id": fin},
            ),
        ),
    ]


@dataclass
class FinFigure:
    """One Fin operation: wrk at 16 connections and at 1 (no queueing: what one request
    costs), on the database at size and, unless skipped, on a small one (what size costs)."""

    key: str
    title: str
    loaded: WrkResult
    alone: WrkResult
    small: WrkResult | None
    unexpected: int
    cpu: CpuUse  # over the run at 16 connections at size: findesk's (all its processes)
    database_cpu: float | None  # PostgreSQL's CPU seconds over that run

    def per_request_ms(self, seconds: float | None) -> float | None:
        requests = self.loaded.requests
        return None if seconds is None or not requests else seconds / requests * 1000

    @property
    def failed(self) -> int:
        runs = [self.loaded, self.alone] + ([self.small] if self.small else [])
        return sum(run.errors for run in runs) + self.unexpected

    @property
    def ok(self) -> bool:
        return self.loaded.p99 * 1000 < FIN_P99_MS and not self.failed


@dataclass
class Timed:
    """Latencies of one thing done one at a time, in seconds."""

    title: str
    latencies: list[float]
    target_ms: float | None
    errors: int = 0

    def ms(self, q: float) -> float:
        return percentile(list(self.latencies), q) * 1000

    @property
    def ok(self) -> bool:
        return not self.errors and (self.target_ms is None or self.ms(95) < self.target_ms)


def timed(
    title: str, samples: int, call: Callable[[], bool], target_ms: float | None, warmup: int = 3
) -> Timed:
    """``call`` ``warmup`` times, then ``samples`` times timed; it says whether it succeeded."""
    for _ in range(warmup):
        call()
    result = Timed(title, [], target_ms)
    for _ in range(samples):
        started = time.perf_counter()
        ok = call()
        elapsed = time.perf_counter() - started
        if ok:
            result.latencies.append(elapsed)
        else:
            result.errors += 1
    return result


@dataclass
class Report:
    options: Options
    seeded: Seeded
    server_version: str
    fin: list[FinFigure]
    inbox: list[Timed]
    queue_counts: Timed
    counted: Timed  # the four COUNT(*) queries the kept counts replace, for comparison
    after_id: list[Timed]
    errors_logged: dict[str, int]

    @property
    def after_id_ratio(self) -> float:
        short, long = self.after_id
        return long.ms(50) / short.ms(50)

    @property
    def after_id_ok(self) -> bool:
        return all(not t.errors for t in self.after_id) and self.after_id_ratio < FLAT_RATIO

    @property
    def ok(self) -> bool:
        return (
            all(f.ok for f in self.fin)
            and all(t.ok for t in self.inbox)
            and self.queue_counts.ok
            and self.after_id_ok
            and not self.errors_logged
        )


@dataclass
class Site:
    """A seeded database and findesk serving it, with Fin's token."""

    name: str
    seeded: Seeded
    findesk: ChildProcess
    token: str = ""

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.findesk.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **options,
        )


def start_site(
    stack: contextlib.ExitStack, folder: Path, name: str, url: str, seeded: Seeded, workers: int
) -> Site:
    port = free_port()
    findesk = ChildProcess(
        f"findesk ({name})",
        serve_command(port),
        folder / f"findesk-{name}.log",
        env=findesk_env(
            folder / name, database_url=url, workers=str(workers) if workers > 1 else None
        ),
        port=port,
    )
    (folder / name).mkdir()
    stack.callback(findesk.stop)
    findesk.start()
    findesk.wait_ready("/healthz", STARTUP_TIMEOUT)
    token = fin_token(findesk.base_url, seeded.client_id, seeded.client_secret)
    return Site(name, seeded, findesk, token)


def run_fin(
    folder: Path, site: Site, scenario: FinScenario, connections: int, seconds: int, run: str
) -> WrkResult:
    return run_wrk(
        folder,
        f"{scenario.key}-{site.name}-{run}",
        site.findesk.base_url,
        scenario.script(f"{site.name}-{run}-{uuid.uuid4().hex[:6]}"),
        connections=connections,
        seconds=seconds,
        headers=[f"Authorization: Bearer {site.token}"],
        counters=UNEXPECTED,
    )


def measure_fin(
    folder: Path,
    big: Site,
    small: Site | None,
    options: Options,
    ours: list[CpuSource],
    database: ProcessTree | None,
) -> list[FinFigure]:
    figures = []
    for scenario, small_scenario in zip(
        fin_scenarios(big.seeded),
        fin_scenarios(small.seeded) if small else [None] * 4,
        strict=True,
    ):
        for site, chosen in ((big, scenario), (small, small_scenario)):
            if site is None or chosen is None:
                continue
            with site.client() as client:
                answer = chosen.probe(client)
            if answer.status_code != chosen.status:
                raise SetupError(
                    f"{chosen.title} on {site.name}: HTTP {answer.status_code}, not "
                    f"{chosen.status}: {answer.text[:300]}"
                )
        log(f"Fin API: {scenario.title} ...")
        run_fin(folder, big, scenario, CONNECTIONS, WARMUP, "warm")
        db_before = database.cpu_seconds() if database else None
        with cpu_meter(big.findesk.tree(), ours) as cpu:
            loaded = run_fin(folder, big, scenario, CONNECTIONS, options.duration, "loaded")
        db_after = database.cpu_seconds() if database else None
        database_cpu = None if db_before is None or db_after is None else db_after - db_before
        alone = run_fin(folder, big, scenario, 1, options.duration, "alone")
        small_result = None
        if small is not None and small_scenario is not None:
            run_fin(folder, small, small_scenario, CONNECTIONS, WARMUP, "warm")
            small_result = run_fin(
                folder, small, small_scenario, CONNECTIONS, options.duration, "loaded"
            )
        unexpected = sum(run.counters["unexpected"] for run in (loaded, alone, small_result) if run)
        figures.append(
            FinFigure(
                scenario.key,
                scenario.title,
                loaded,
                alone,
                small_result,
                unexpected,
                cpu,
                database_cpu,
            )
        )
    return figures


def check(response: httpx.Response, status: int = 200) -> bool:
    return response.status_code == status


def measure(options: Options) -> Report:
    require_wrk()
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(bench_folder())
        log("starting a throwaway PostgreSQL cluster ...")
        postgres = stack.enter_context(throwaway_postgres())
        ours: list[CpuSource] = []
        database = ProcessTree(postgres.pid) if postgres.pid is not None else None
        if database is not None:
            ours.append(database)
        url = postgres.create_database("findesk_size")
        seeded = seed(url, options.conversations, options.messages)
        log(
            f"seeded in {sum(seeded.seconds.values()):.0f} s: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in seeded.seconds.items())
        )
        with psycopg.connect(sqlalchemy_to_libpq(url)) as connection:
            row = connection.execute("SHOW server_version").fetchone()
            server_version = str(row[0]).split()[0] if row else "?"
        small: Site | None = None
        if options.small:
            small_url = postgres.create_database("findesk_small")
            small_seeded = seed(small_url, options.small, options.small * 10 + LONG + SHORT)
        log("starting findesk ...")
        big = start_site(stack, folder, "size", url, seeded, options.workers)
        ours.append(big.findesk.tree())
        if options.small:
            small = start_site(stack, folder, "small", small_url, small_seeded, options.workers)
            ours.append(small.findesk.tree())
        cookie = sign_in(big.findesk.base_url, AGENT_EMAIL, PASSWORD)
        log_start = big.findesk.log_size()

        fin = measure_fin(folder, big, small, options, ours, database)

        log("inbox pages, after_id and queue counts ...")
        with big.client(cookies={"findesk_session": cookie}) as client:

            def page(queue: str) -> Callable[[], bool]:
                return lambda: check(client.get("/inbox", params={"queue": queue}))

            def messages_after(pair: tuple[str, str]) -> Callable[[], bool]:
                params = {"conversation_id": pair[0], "after_id": pair[1]}
                return lambda: check(client.get("/api/fin/messages", params=params))

            inbox = [
                timed(f"queue page: {queue}", options.samples, page(queue), INBOX_MS)
                for queue in QUEUES
            ]
            after_id = [
                timed(
                    f"{length:,}-message conversation",
                    options.samples * 2,
                    messages_after(pair),
                    None,
                    warmup=10,
                )
                for length, pair in ((SHORT, seeded.short), (LONG, seeded.long))
            ]
        db = Database(url)
        try:

            def kept() -> bool:
                with db.read_session() as session:
                    queue_counts(session, seeded.agent_id)
                return True

            def counted() -> bool:
                with db.read_session() as session:
                    _counted(session, seeded.agent_id)
                return True

            kept_counts = timed("queue counts (kept)", options.samples, kept, INBOX_MS)
            counted_counts = timed("queue counts by COUNT(*)", options.samples, counted, None)
        finally:
            db.dispose()
        for site in (big, small):
            if site is not None and not site.findesk.alive():
                raise SetupError(
                    f"{site.findesk.name} exited; its log ends with:\n{site.findesk.log_tail()}"
                )
        return Report(
            options,
            seeded,
            server_version,
            fin,
            inbox,
            kept_counts,
            counted_counts,
            after_id,
            errors_logged(big.findesk.log_text(since=log_start)),
        )


def _counted(session: Any, agent_id: str) -> dict[str, int]:
    """The sidebar as it was read before the counts were kept: four COUNT(*) queries."""
    f = conversation_repository.ConversationFilter
    count = conversation_repository.count
    return {
        "waiting": count(session, f(owner="waiting", statuses=("open",))),
        "mine": count(session, f(owner="mine", agent_id=agent_id, statuses=("open",))),
        "fin": count(session, f(owner="fin", statuses=("open",))),
        "all": count(session, f(statuses=("open",))),
    }


# --- the report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_report(report: Report) -> None:
    seeded, options = report.seeded, report.options
    print(
        f"PostgreSQL {report.server_version} at size: {options.conversations:,} conversations, "
        f"{options.messages:,} messages ({platform.machine()}, {os.cpu_count()} cores)"
    )
    total = sum(seeded.seconds.values())
    print(
        f"seeded in {total:.0f} s ({total / 60:.1f} min): "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in seeded.seconds.items())
    )
    print("  rows: " + ", ".join(f"{table} {rows:,}" for table, rows in seeded.rows.items()))
    print()
    small = f"; small: {options.small:,} conversations" if options.small else ""
    print(
        f"Fin API, findesk serve with {options.workers} process(es), wrk for {options.duration} s"
        f" a run (at size: 16 and 1 connections{small})"
    )
    print(
        f"  {'':<22} {'16 connections':^21} | {'1 connection':^13} | {'16, small db':^13} |"
        f" {'CPU ms/req':^11} |"
    )
    print(
        f"  {'operation':<22} {'req/s':>7} {'p50':>6} {'p99':>6} | {'p50':>6} {'p99':>6} |"
        f" {'p50':>6} {'p99':>6} | {'app':>5} {'db':>5} | p99 < {FIN_P99_MS:g} ms at 16"
    )
    for figure in report.fin:
        loaded, alone, at_small = figure.loaded, figure.alone, figure.small
        failed = f", {figure.failed} failed" if figure.failed else ""
        small_cells = (
            f"{ms(at_small.p50):>6} {ms(at_small.p99):>6}" if at_small else f"{'-':>6} {'-':>6}"
        )
        app = cell(figure.per_request_ms(figure.cpu.target), ">5.2f")
        db = cell(figure.per_request_ms(figure.database_cpu), ">5.2f")
        print(
            f"  {figure.title:<22} {loaded.rate:>7.0f} {ms(loaded.p50):>6} {ms(loaded.p99):>6}"
            f" | {ms(alone.p50):>6} {ms(alone.p99):>6} | {small_cells} | {app} {db}"
            f" | {verdict(figure.ok)}{failed}"
        )
    print(
        "  (ms; app: findesk's CPU, db: PostgreSQL's, per request at 16 connections at size;"
        f" {os.cpu_count()} cores in all)"
    )
    print()
    print(f"Inbox at size, one request at a time, {options.samples} samples each")
    print(f"  {'':<34} {'median ms':>10} {'p95 ms':>8}  target")
    for item in [*report.inbox, report.queue_counts, report.counted]:
        target = (
            f"p95 < {item.target_ms:g} ms: {verdict(item.ok)}"
            if item.target_ms is not None
            else "(what the kept counts replace)"
        )
        failed = f", {item.errors} failed" if item.errors else ""
        print(f"  {item.title:<34} {item.ms(50):>10.1f} {item.ms(95):>8.1f}  {target}{failed}")
    print()
    ratio = report.after_id_ratio
    print("get_messages after the last-but-one message, one request at a time")
    for item in report.after_id:
        print(f"  {item.title:<34} {item.ms(50):>10.2f} {item.ms(95):>8.2f}")
    print(
        f"  ratio of the medians: {ratio:.2f}  flat (< {FLAT_RATIO:g}): "
        f"{verdict(report.after_id_ok)}"
    )
    if report.errors_logged:
        print(f"errors logged by findesk: {report.errors_logged}")
    print_busy_warning(busiest(f.cpu.others_percent for f in report.fin))
    print(f"overall: {verdict(report.ok)}")


def to_json(report: Report) -> dict[str, Any]:
    def wrk(result: WrkResult | None) -> dict[str, Any] | None:
        if result is None:
            return None
        return {
            "requests": result.requests,
            "requests_per_second": rounded(result.rate, 1),
            "p50_ms": rounded(result.p50 * 1000, 2),
            "p99_ms": rounded(result.p99 * 1000, 2),
            "failed": result.errors,
        }

    def fin(figure: FinFigure) -> dict[str, Any]:
        return {
            "operation": figure.key,
            "connections_16": wrk(figure.loaded),
            "connections_1": wrk(figure.alone),
            "small_database_16": wrk(figure.small),
            "unexpected_status": figure.unexpected,
            "app_cpu_ms_per_request": rounded(figure.per_request_ms(figure.cpu.target), 3),
            "database_cpu_ms_per_request": rounded(figure.per_request_ms(figure.database_cpu), 3),
            "others_cpu_percent": rounded(figure.cpu.others_percent, 1),
            "ok": figure.ok,
        }

    def one(item: Timed) -> dict[str, Any]:
        return {
            "what": item.title,
            "samples": len(item.latencies),
            "median_ms": rounded(item.ms(50), 2),
            "p95_ms": rounded(item.ms(95), 2),
            "errors": item.errors,
            "target_ms": item.target_ms,
            "ok": item.ok,
        }

    seeded = report.seeded
    return {
        "conversations": report.options.conversations,
        "messages": report.options.messages,
        "postgresql": report.server_version,
        "seed_seconds": {k: rounded(v, 1) for k, v in seeded.seconds.items()},
        "rows": seeded.rows,
        "fin_api": {
            "connections": CONNECTIONS,
            "p99_target_ms": FIN_P99_MS,
            "operations": [fin(f) for f in report.fin],
        },
        "inbox": [one(t) for t in report.inbox],
        "queue_counts": one(report.queue_counts),
        "queue_counts_by_count": one(report.counted),
        "after_id": {
            "short": one(report.after_id[0]),
            "long": one(report.after_id[1]),
            "ratio": rounded(report.after_id_ratio, 3),
            "ok": report.after_id_ok,
        },
        "errors_logged": report.errors_logged,
        "ok": report.ok,
    }


# --- the command line -----------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    conversations: int
    messages: int
    duration: int
    samples: int
    small: int  # conversations of the small database the Fin figures are compared with; 0: none
    workers: int  # findesk serve's processes
    as_json: bool


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (10)")
    parser.add_argument("--samples", type=int, default=50, help="timed requests of each page")
    parser.add_argument(
        "--small",
        type=int,
        default=2_000,
        help="conversations of a small database that the Fin figures are compared with "
        "(2,000; 0: none)",
    )
    parser.add_argument("--workers", type=int, default=1, help="findesk serve's processes (1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.conversations < 3 or min(args.duration, args.samples, args.workers) < 1:
        parser.error("--conversations must be >= 3; --duration, --samples, --workers >= 1")
    if args.small < 0:
        parser.error("--small must be >= 0")
    return Options(
        args.conversations,
        args.messages,
        args.duration,
        args.samples,
        args.small,
        args.workers,
        args.json,
    )


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    report = measure(options)
    if options.as_json:
        print(json.dumps(to_json(report), indent=2))
    else:
        print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    run_main(main)
