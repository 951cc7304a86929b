"""Benchmark of reading one long conversation: the Fin API's get_messages, the agent API and the
inbox, on a conversation of 10,000 messages.

Run: ``.venv/bin/python bench/long_conversation.py [--messages N] [--samples N]
[--quick-samples N] [--warmup N] [--database-url postgresql+psycopg://...] [--json]``

What it does:

1. Migrates a SQLite file in a temporary folder (or, with ``--database-url``, an empty database
   that it empties again at the end) and seeds, with the domain services, the Fin bot, a human
   agent (password and personal token), an OAuth client and an end user with attributes; then,
   in bulk with SQLAlchemy Core, one conversation of ``--messages`` messages a minute apart: the
   end user, Fin and the human agent in turn, every tenth of the agent's a private note, every
   25th message with two attachments, bodies with HTML and non-ASCII text (accents, CJK,
   emoji); and a change in the conversation's history every 100 messages. PostgreSQL is then
   vacuumed and analysed, as autovacuum soon would.
2. Starts ``findesk serve`` as a real child process on a free port of 127.0.0.1 (default
   settings: the Fin call ledger is on), gets a Fin bearer token from ``POST /oauth/token`` and
   signs in to the inbox through its form.
3. Measures each scenario with sequential requests on one keep-alive connection, after a
   warm-up: time per call (median and p95, the whole answer read), the answer's size, the
   messages it holds and the server's CPU per call (from /proc; the server's ledger recorder
   thread included). The scenarios:

   - Fin get_messages without after_id (REST and posts-only): every message, as the contract
     wants;
   - Fin get_messages with after_id 10 messages from the end;
   - agent API: the conversation (``GET /api/v1/conversations/{id}``), its messages, and the
     page of older messages before the 50th newest;
   - inbox: the conversation page, its live-refresh fragment, and the older page
     (``?before=``).

Exit status: 0 when no request failed, 1 otherwise, 2 when the set-up failed, 130 when
interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import platform
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import MetaData, create_engine, insert, inspect, text

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_agent_token, create_client
from findesk.conversations import counts
from findesk.conversations.models import Conversation, ConversationEvent, Message
from findesk.kit import ids
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.users.service import create_user

from benchkit import (
    ChildProcess,
    Samples,
    SetupError,
    bench_folder,
    busiest,
    cell,
    cpu_meter,
    findesk_env,
    free_port,
    log,
    print_busy_warning,
    rounded,
    run_main,
    serve_command,
)

STARTUP_TIMEOUT = 60.0
RANDOM_SEED = 20261212
AGENT_EMAIL = "bench-agent@example.com"
AGENT_PASSWORD = "bench-password-0123456789"
CHUNK = 5_000  # rows per INSERT executemany
NEWEST = 50  # the page the agent API and the inbox show first
AFTER_ID_TAIL = 10  # get_messages with after_id returns this many messages
EVENT_EVERY = 100  # a history change every this many messages

BODIES = (
    "<p>Hello, I was charged twice for my subscription this month. Can you help?</p>",
    "<p>Grüße aus Köln! Die Rechnung Nr. 2041 ist doppelt abgebucht worden.</p>",
    "<p>Thanks for waiting. I can see <b>two charges</b> on 3 May; "
    '<a href="https://example.com/refunds">our refund policy</a> covers this.</p>',
    "<p>请帮我查一下订单 👋 — the parcel was due on Monday.</p>",
    "<ul><li>Step one: open <i>Settings</i></li><li>Step two: <code>Billing</code></li></ul>",
    "<p>Merci beaucoup, ça marche très bien maintenant. 🎉</p>",
)


# --- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    conversation_id: str
    message_ids: list[str]  # in creation order
    client_id: str
    client_secret: str
    agent_token: str
    events: int
    seconds: float


def seed(url: str, messages: int) -> Seeded:
    started = time.perf_counter()
    upgrade(url)
    db = Database(url)
    rng = random.Random(RANDOM_SEED)
    try:
        with db.transaction() as session:
            fin = ensure_fin_agent(session, Settings.model_fields["fin_agent_email"].default)
            me = create_agent(
                session,
                email=AGENT_EMAIL,
                name="Bench Agent",
                alias="Ana from Support",
                role="admin",
                password=AGENT_PASSWORD,
            )
            token = create_agent_token(session, me)
            client, secret = create_client(session, "bench")
            user, _ = create_user(
                session,
                object_id="bench-user",
                name="Zoë Müller",
                email="zoe@example.com",
                attributes={"plan": "Pro", "seats": 12, "country": "DE", "vip": True},
            )
            fin_id, my_id, user_id, client_id = fin.id, me.id, user.id, client.id

        now = utcnow()
        start = now - timedelta(minutes=messages + 1)
        conversation_id = ids.new_id(ids.CONVERSATION)
        conversation = {
            "id": conversation_id,
            "object_id": "bench-long-conversation",
            "user_id": user_id,
            "status": "open",
            "title": "A very long conversation",
            "attributes": {"priority": "high"},
            "assignee_id": my_id,
            "last_activity_at": now,
            "created_at": start,
            "updated_at": now,
        }
        rows: list[dict[str, Any]] = []
        for n in range(messages):
            turn = n % 3
            author_type = "end_user" if turn == 0 else "agent"
            agent_id = None if turn == 0 else (fin_id if turn == 1 else my_id)
            private = turn == 2 and n % 10 == 2
            attachments = (
                [
                    {
                        "url": f"https://files.example.com/{n}/invoice.pdf",
                        "filetype": "pdf",
                        "filename": "Invoice 2041 (corrected)",
                    },
                    {"url": f"https://files.example.com/{n}/photo.png", "filetype": "png"},
                ]
                if n % 25 == 0
                else []
            )
            rows.append(
                {
                    "id": ids.new_id(ids.MESSAGE),
                    "conversation_id": conversation_id,
                    "object_id": None,
                    "message_type": "comment",
                    "body": rng.choice(BODIES) + f"<p>#{n}</p>",
                    "author_type": author_type,
                    "author_user_id": user_id if turn == 0 else None,
                    "author_agent_id": agent_id,
                    "visibility": "private" if private else "public",
                    "attachments": attachments,
                    "created_at": start + timedelta(minutes=n),
                    "after_take_over": False,
                    "seen_by_fin_at": None,
                }
            )
        events = [
            {
                "conversation_id": conversation_id,
                "kind": "tags",
                "actor": "agent",
                "actor_agent_id": my_id,
                "from_value": [],
                "to_value": [f"batch-{n}"],
                "detail": {},
                "at": start + timedelta(minutes=n, seconds=30),
            }
            for n in range(0, messages, EVENT_EVERY)
        ]
        with db.engine.begin() as connection:
            connection.execute(insert(Conversation.__table__), [conversation])
            for chunk in range(0, len(rows), CHUNK):
                connection.execute(insert(Message.__table__), rows[chunk : chunk + CHUNK])
            connection.execute(insert(ConversationEvent.__table__), events)
        with db.transaction() as session:
            counts.recount(session)  # a conversation inserted past the actions: count it
        if not db.is_sqlite:
            # Autovacuum would analyse the freshly loaded table within a minute; without
            # statistics PostgreSQL reads the whole conversation to sort out the newest 50.
            with db.engine.connect() as connection:
                autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.execute(text("VACUUM ANALYZE"))
    finally:
        db.dispose()
    return Seeded(
        conversation_id=conversation_id,
        message_ids=[row["id"] for row in rows],
        client_id=client_id,
        client_secret=secret,
        agent_token=token,
        events=len(events),
        seconds=time.perf_counter() - started,
    )


def check_empty(url: str) -> None:
    """Refuse a database that holds any table: the benchmark fills it and empties it after."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    except Exception as exc:
        raise SetupError(f"cannot open {engine.url!r}: {exc}") from exc
    finally:
        engine.dispose()
    if tables:
        raise SetupError(f"{engine.url!r} is not empty ({len(tables)} tables)")


def drop_everything(url: str) -> None:
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


# --- clients --------------------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
MESSAGE_ITEM = re.compile(r'<li class="message ')


def fin_token(client: httpx.Client, seeded: Seeded) -> str:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(seeded.client_id, seeded.client_secret),
    )
    if response.status_code != 200:
        raise SetupError(f"POST /oauth/token: HTTP {response.status_code}: {response.text[:300]}")
    return str(response.json()["access_token"])


def sign_in(client: httpx.Client) -> None:
    page = client.get("/login")
    found = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or found is None:
        raise SetupError(f"GET /login: HTTP {page.status_code}, no CSRF field")
    form = {
        "email": AGENT_EMAIL,
        "password": AGENT_PASSWORD,
        "csrf_token": html.unescape(found.group(1)),
        "next": "/inbox",
    }
    answer = client.post("/login", data=form)
    if answer.status_code != 303 or "findesk_session" not in client.cookies:
        raise SetupError(f"POST /login: HTTP {answer.status_code}: {answer.text[:300]}")


# How many messages an answer holds (checked on the warm-up answers, outside the timing).
Counter = Callable[[httpx.Response], int]


def fin_rest_count(response: httpx.Response) -> int:
    return len(response.json())


def fin_posts_count(response: httpx.Response) -> int:
    return len(response.json()["data"])


def agent_detail_count(response: httpx.Response) -> int:
    return len(response.json()["messages"])


def agent_messages_count(response: httpx.Response) -> int:
    body = response.json()
    return len(body["items"] if isinstance(body, dict) else body)


def html_count(response: httpx.Response) -> int:
    return len(MESSAGE_ITEM.findall(response.text))


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Scenario(Samples):
    name: str
    method: str
    path: str
    samples: int
    counter: Counter
    client: str  # fin, agent or inbox
    json_body: dict[str, Any] | None = None
    size: int = 0  # bytes of the answer's body
    messages: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "request": f"{self.method} {self.path}",
            "requests": self.requests,
            "p50_ms": rounded(self.percentile_ms(50), 2),
            "p95_ms": rounded(self.percentile_ms(95), 2),
            "bytes": self.size,
            "messages": self.messages,
            "errors": self.errors,
            "first_error": self.first_error,
            "server_cpu_ms_per_request": rounded(self.server_cpu_ms, 2),
            "other_processes_cpu_percent_of_machine": rounded(self.others_percent, 1),
        }


def send(client: httpx.Client, scenario: Scenario) -> httpx.Response:
    return client.request(scenario.method, scenario.path, json=scenario.json_body)


def measure(client: httpx.Client, server: ChildProcess, scenario: Scenario, warmup: int) -> None:
    for _ in range(max(warmup, 1)):
        response = send(client, scenario)
        if response.status_code != 200:
            raise SetupError(f"{scenario.name}: HTTP {response.status_code}: {response.text[:300]}")
    scenario.size = len(response.content)
    scenario.messages = scenario.counter(response)
    with cpu_meter(server) as cpu:
        started = time.perf_counter()
        for _ in range(scenario.samples):
            sent = time.perf_counter()
            try:
                response = send(client, scenario)
            except httpx.HTTPError as exc:
                error: str | None = f"{type(exc).__name__}: {exc}"
            else:
                error = None if response.status_code == 200 else f"HTTP {response.status_code}"
            scenario.record(time.perf_counter() - sent, error)
        scenario.elapsed = time.perf_counter() - started
    scenario.cpu = cpu


def scenarios_for(options: Options, seeded: Seeded) -> list[Scenario]:
    cid = seeded.conversation_id
    after_id = seeded.message_ids[-AFTER_ID_TAIL - 1]
    older_than = seeded.message_ids[-NEWEST]  # the oldest of the newest page
    slow, quick = options.samples, options.quick_samples
    return [
        Scenario(
            "fin REST, all",
            "GET",
            f"/api/fin/messages?conversation_id={cid}",
            slow,
            fin_rest_count,
            "fin",
        ),
        Scenario(
            "fin posts-only, all",
            "POST",
            "/api/fin/get_messages",
            slow,
            fin_posts_count,
            "fin",
            json_body={"conversation_id": cid},
        ),
        Scenario(
            f"fin REST, last {AFTER_ID_TAIL}",
            "GET",
            f"/api/fin/messages?conversation_id={cid}&after_id={after_id}",
            quick,
            fin_rest_count,
            "fin",
        ),
        Scenario(
            "agent API conversation",
            "GET",
            f"/api/v1/conversations/{cid}",
            quick,
            agent_detail_count,
            "agent",
        ),
        Scenario(
            "agent API messages",
            "GET",
            f"/api/v1/conversations/{cid}/messages",
            quick,
            agent_messages_count,
            "agent",
        ),
        Scenario(
            "agent API older page",
            "GET",
            f"/api/v1/conversations/{cid}/messages?before={older_than}",
            quick,
            agent_messages_count,
            "agent",
        ),
        Scenario("inbox page", "GET", f"/inbox/conversations/{cid}", quick, html_count, "inbox"),
        Scenario(
            "inbox live fragment",
            "GET",
            f"/inbox/fragments/conversation/{cid}",
            quick,
            html_count,
            "inbox",
        ),
        Scenario(
            "inbox older page",
            "GET",
            f"/inbox/conversations/{cid}?before={older_than}",
            quick,
            html_count,
            "inbox",
        ),
    ]


def run_scenarios(options: Options, server: ChildProcess, seeded: Seeded) -> list[Scenario]:
    scenarios = scenarios_for(options, seeded)
    base = {"base_url": server.base_url, "timeout": 120}
    with (
        httpx.Client(**base) as anonymous,
        httpx.Client(**base) as inbox,
        httpx.Client(**base, headers={"Authorization": f"Bearer {seeded.agent_token}"}) as agent,
    ):
        token = fin_token(anonymous, seeded)
        sign_in(inbox)
        with httpx.Client(**base, headers={"Authorization": f"Bearer {token}"}) as fin:
            clients = {"fin": fin, "agent": agent, "inbox": inbox}
            for scenario in scenarios:
                log(
                    f"  {scenario.name}: {scenario.samples} requests after {options.warmup} warm-up"
                )
                measure(clients[scenario.client], server, scenario, options.warmup)
    return scenarios


# --- output ---------------------------------------------------------------------------------


@dataclass
class Options:
    messages: int
    samples: int
    quick_samples: int
    warmup: int
    database_url: str | None
    as_json: bool


def print_table(options: Options, seeded: Seeded, backend: str, scenarios: list[Scenario]) -> None:
    cores = os.cpu_count() or 0
    print(
        f"findesk long-conversation benchmark on {backend} (Python {platform.python_version()}, "
        f"{cores} cores)\n"
        f"one conversation of {options.messages:,} messages and {seeded.events} history "
        f"changes, seeded in {seeded.seconds:.1f} s\n"
        f"Sequential requests on one keep-alive connection after {options.warmup} warm-up; "
        f"the whole answer read.\nThis process and the server (one uvicorn worker) share the "
        f"cores; 'others' is the CPU of processes outside the benchmark (% of the machine).\n"
    )
    header = (
        f"{'scenario':<24} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'KiB':>8} "
        f"{'messages':>8} {'srv CPU ms':>10} {'errors':>6} {'others':>6}"
    )
    print(header)
    print("-" * len(header))
    for s in scenarios:
        print(
            f"{s.name:<24} {s.requests:>8} {s.percentile_ms(50):>8.1f} "
            f"{s.percentile_ms(95):>8.1f} {s.size / 1024:>8.1f} {s.messages:>8} "
            f"{cell(s.server_cpu_ms, '.1f'):>10} {s.errors:>6} "
            f"{cell(s.others_percent, '.0f', '%'):>6}"
        )
    for s in scenarios:
        if s.first_error:
            print(f"first error of {s.name}: {s.first_error}")
    print_busy_warning(busiest(s.others_percent for s in scenarios))


def to_json(
    options: Options, seeded: Seeded, backend: str, scenarios: list[Scenario]
) -> dict[str, Any]:
    return {
        "config": {
            "database": backend,
            "messages": options.messages,
            "history_changes": seeded.events,
            "samples": options.samples,
            "quick_samples": options.quick_samples,
            "warmup": options.warmup,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "other_processes_max_cpu_percent_of_machine": rounded(
                busiest(s.others_percent for s in scenarios), 1
            ),
        },
        "seed_seconds": round(seeded.seconds, 2),
        "scenarios": {s.name: s.to_json() for s in scenarios},
        "pass": not any(s.errors for s in scenarios),
    }


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages (10,000)")
    parser.add_argument(
        "--samples", type=int, default=20, help="measured requests of each full fetch (20)"
    )
    parser.add_argument(
        "--quick-samples",
        type=int,
        default=100,
        help="measured requests of each other scenario (100)",
    )
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests each (3)")
    parser.add_argument(
        "--database-url",
        help="an empty PostgreSQL database to use instead of SQLite, filled and emptied again",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.messages < 2 * NEWEST or args.samples < 1 or args.quick_samples < 1:
        parser.error(f"messages must be >= {2 * NEWEST}, samples >= 1")
    if args.warmup < 0:
        parser.error("warmup must be >= 0")
    return Options(
        args.messages,
        args.samples,
        args.quick_samples,
        args.warmup,
        args.database_url,
        args.json,
    )


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(bench_folder())
        if options.database_url:
            url, backend = options.database_url, "PostgreSQL"
            check_empty(url)
            stack.callback(drop_everything, url)
        else:
            url, backend = f"sqlite:///{data_dir / 'findesk.db'}", "SQLite"
        log(f"seeding a conversation of {options.messages:,} messages into {backend} ...")
        seeded = seed(url, options.messages)
        log(f"  seeded in {seeded.seconds:.1f} s")
        port = free_port()
        server = ChildProcess(
            "findesk",
            serve_command(port),
            data_dir / "findesk.log",
            env=findesk_env(data_dir, database_url=options.database_url or None),
            port=port,
        )
        stack.callback(server.stop)
        log("starting findesk serve ...")
        server.start()
        server.wait_ready("/healthz", STARTUP_TIMEOUT)
        scenarios = run_scenarios(options, server, seeded)

    if options.as_json:
        print(json.dumps(to_json(options, seeded, backend, scenarios), indent=2))
    else:
        print_table(options, seeded, backend, scenarios)
    failed = sum(s.errors for s in scenarios)
    if failed:
        log(f"FAIL: {failed} requests failed")
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
