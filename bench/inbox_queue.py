"""Benchmark of the inbox's "Waiting for a human" queue page with 100,000 conversations.

Run: ``.venv/bin/python bench/inbox_queue.py [--conversations N] [--samples N] [--json]
[--database-url postgresql+psycopg://...]``

What it does:

1. Migrates a SQLite file in a temporary folder (or, with ``--database-url``, an empty database
   that it empties again at the end) and seeds it in bulk, with SQLAlchemy Core in a few big
   transactions rather than through the domain services, to be quick: the Fin bot, six human
   agents (one of them, with a password, is the one who signs in), 5,000 end users and 100,000
   conversations with 1 to 3 messages each and tags on a quarter of them. The mix: 5% waiting
   for a human (open, nobody assigned), 60% open with Fin, 15% open with the human agents and
   20% resolved or closed; last activity spread over 90 days. PostgreSQL is then vacuumed and
   analysed, as autovacuum soon would; SQLite is left without statistics, as findesk leaves it.
2. Starts ``findesk serve`` as a real child process on a free port of 127.0.0.1 (default
   settings, only the data folder, or the database URL, set) and signs in over HTTP as a
   browser does: ``GET /login`` for the CSRF cookie and form field, then ``POST /login``.
3. Requests each page sequentially, one at a time on a keep-alive connection, after a warm-up:
   ``GET /inbox?queue=waiting`` (the target: median under 200 ms), and for information the
   other queues, a deep page (page 5, reached by following the "Older conversations" link)
   and a search of every conversation. Each answer is checked: 200, and 25 conversations.

Exit status: 0 when the waiting queue's median is under the target and no request failed, 1
otherwise, 2 when the set-up failed, 130 when interrupted (Ctrl-C or SIGTERM).
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, MetaData, Table, create_engine, insert, inspect, text

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.conversations import counts
from findesk.conversations.models import Conversation, ConversationTag, Message
from findesk.kit import ids
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.users.models import EndUser

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

TARGET_MS = 200.0  # the issue: the waiting queue page answers in under 200 ms at the median
PAGE_SIZE = 25  # conversations on a queue page (findesk.inbox.endpoints.PAGE_SIZE)
DEEP_PAGE = 5  # the deep-page scenarios follow "Older conversations" this many pages in, minus 1
STARTUP_TIMEOUT = 60.0
RANDOM_SEED = 20261121  # the same data on every run

AGENT_EMAIL = "bench-agent@example.com"
AGENT_PASSWORD = "bench-password-0123456789"
END_USERS = 5_000
OTHER_HUMANS = 5  # human agents besides the one who signs in
SPAN = timedelta(days=90)  # last activity is spread over this much time before now
CHUNK = 10_000  # rows per INSERT executemany
SEARCH_TERM = "chargeback"  # in about 1% of conversations' first message

# (share of all conversations, status, owner): owner is waiting (nobody), fin or human.
MIX = (
    (0.05, "open", "waiting"),
    (0.60, "open", "fin"),
    (0.15, "open", "human"),
    (0.12, "resolved", "any"),
    (0.08, "closed", "any"),
)
TAGS = ("billing", "refund", "bug", "vip", "shipping", "account", "feature-request", "urgent")
FIRST_NAMES = ("Jane", "Sam", "Priya", "Tom", "Ana", "Wei", "Olu", "Marta", "Lars", "Noor")
LAST_NAMES = ("Doe", "Lee", "Patel", "Smith", "Silva", "Chen", "Okafor", "Nowak", "Berg", "Khan")
TOPICS = (
    ("Question about pricing plans", "What does the Pro plan cost per seat?"),
    ("Refund for a double charge", "I was charged twice this month. Can I get a refund?"),
    ("Exporting my data", "How do I export all my conversations?"),
    ("Cannot sign in", "The sign-in page says my password is wrong, but it is not."),
    ("Where is my order?", "My parcel was due on Monday and has not arrived."),
    ("Change of address", "I moved; please send the next delivery to my new address."),
    ("Invoice needed", "Could you send me a VAT invoice for last month?"),
    ("App crashes on start", "Since the update the app closes as soon as I open it."),
    (None, "Hello, is anyone there?"),  # no title: the queue shows the user's name instead
)
FIN_REPLIES = (
    "I can help with that. Here is what I found in our help center.",
    "Thanks for your patience. Let me get a teammate who can look into this.",
    "Go to Settings, then Billing, to see your plan and invoices.",
)


# --- seeding --------------------------------------------------------------------------------


@dataclass
class Seeded:
    conversations: int = 0
    messages: int = 0
    tags: int = 0
    end_users: int = 0
    queues: dict[str, int] = field(default_factory=dict)  # open conversations in each queue
    seconds: float = 0.0


class FastIds:
    """Ids shaped like ``findesk.kit.ids.new_id`` (prefix, 20 base32 characters) from a seeded
    generator: secrets.choice, 20 calls an id, would cost seconds for 300,000 ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.alphabet = ids._ALPHABET

    def __call__(self, prefix: str) -> str:
        return f"{prefix}_" + "".join(self.rng.choices(self.alphabet, k=20))


def _insert_chunks(engine: Engine, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """One transaction, one executemany a chunk."""
    with engine.begin() as connection:
        for start in range(0, len(rows), CHUNK):
            connection.execute(insert(table), rows[start : start + CHUNK])


def seed(url: str, conversations: int) -> Seeded:
    """Migrate, create the agents through the domain services (the one who signs in needs a
    password hash), then bulk insert the end users, conversations, tags and messages."""
    started = time.perf_counter()
    upgrade(url)
    db = Database(url)
    rng = random.Random(RANDOM_SEED)
    new_id = FastIds(rng)
    seeded = Seeded()
    try:
        with db.transaction() as session:
            fin = ensure_fin_agent(session, Settings.model_fields["fin_agent_email"].default)
            me = create_agent(
                session,
                email=AGENT_EMAIL,
                name="Bench Agent",
                role="admin",
                password=AGENT_PASSWORD,
            )
            others = [
                create_agent(session, email=f"agent{n}@example.com", name=f"Agent {n}")
                for n in range(1, OTHER_HUMANS + 1)
            ]
            fin_id, my_id = fin.id, me.id
            human_ids = [me.id, *(agent.id for agent in others)]

        now = utcnow()
        users: list[dict[str, Any]] = []
        for n in range(END_USERS):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            at = now - SPAN - timedelta(days=rng.uniform(0, 365))
            users.append(
                {
                    "id": new_id(ids.USER),
                    "object_id": f"bench-user-{n}",
                    "name": f"{first} {last}" if n % 10 else None,  # some visitors are nameless
                    "email": f"{first}.{last}.{n}@example.com".lower(),
                    "photo_url": None,
                    "attributes": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )

        conversation_rows: list[dict[str, Any]] = []
        message_rows: list[dict[str, Any]] = []
        tag_rows: list[dict[str, Any]] = []
        shares = [share for share, _, _ in MIX]
        for n in range(conversations):
            _, status, owner = rng.choices(MIX, weights=shares)[0]
            if owner == "any":
                owner = rng.choice(("fin", "fin", "human", "waiting"))
            assignee = {"waiting": None, "fin": fin_id, "human": rng.choice(human_ids)}[owner]
            if status == "open" and owner == "human" and assignee == my_id:
                seeded.queues["mine"] = seeded.queues.get("mine", 0) + 1
            if status == "open":
                seeded.queues[owner] = seeded.queues.get(owner, 0) + 1
            user = rng.choice(users)
            title, question = rng.choice(TOPICS)
            if rng.random() < 0.01:
                question += f" It looks like a {SEARCH_TERM} from my bank."
            last_activity = now - SPAN * rng.random() ** 2  # more recent activity is likelier
            created = last_activity - timedelta(minutes=rng.uniform(1, 600))
            conversation_id = new_id(ids.CONVERSATION)
            conversation_rows.append(
                {
                    "id": conversation_id,
                    "object_id": f"bench-conversation-{n}",
                    "user_id": user["id"],
                    "status": status,
                    "title": title,
                    "attributes": {},
                    "assignee_id": assignee,
                    "last_user_read_at": last_activity if rng.random() < 0.5 else None,
                    "last_activity_at": last_activity,
                    "created_at": created,
                    "updated_at": last_activity,
                }
            )
            messages = rng.randint(1, 3)
            step = (last_activity - created) / messages
            for m in range(messages):
                by_user = m % 2 == 0
                if by_user:
                    body = question if m == 0 else "Thank you, that helps."
                else:
                    body = rng.choice(FIN_REPLIES)
                agent_author = fin_id if assignee in (None, fin_id) else assignee
                message_rows.append(
                    {
                        "id": new_id(ids.MESSAGE),
                        "conversation_id": conversation_id,
                        "object_id": None,
                        "message_type": "comment",
                        "body": f"<p>{html.escape(body)}</p>",
                        "author_type": "end_user" if by_user else "agent",
                        "author_user_id": user["id"] if by_user else None,
                        "author_agent_id": None if by_user else agent_author,
                        "visibility": "public",
                        "attachments": [],
                        "created_at": created + step * (m + 1),
                    }
                )
            if rng.random() < 0.25:
                for position, tag in enumerate(rng.sample(TAGS, rng.randint(1, 2))):
                    tag_rows.append(
                        {"conversation_id": conversation_id, "tag": tag, "position": position}
                    )

        tables = {
            model: model.__table__ for model in (EndUser, Conversation, ConversationTag, Message)
        }
        _insert_chunks(db.engine, tables[EndUser], users)
        _insert_chunks(db.engine, tables[Conversation], conversation_rows)
        _insert_chunks(db.engine, tables[ConversationTag], tag_rows)
        _insert_chunks(db.engine, tables[Message], message_rows)
        with db.transaction() as session:
            # Rows inserted past the domain actions: set the queue counts from them, as
            # `findesk recount` does (every action keeps them current from here on).
            counts.recount(session)
        if not db.is_sqlite:
            # Autovacuum vacuums and analyses freshly loaded tables within a minute or so (the
            # visibility map matters to the counts' index-only scans): do it now. findesk never
            # runs ANALYZE on SQLite, so neither do we: its planner works without statistics.
            with db.engine.connect() as connection:
                autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.execute(text("VACUUM ANALYZE"))
        seeded.conversations, seeded.messages = len(conversation_rows), len(message_rows)
        seeded.tags, seeded.end_users = len(tag_rows), len(users)
        seeded.queues["all"] = sum(seeded.queues.get(q, 0) for q in ("waiting", "fin", "human"))
    finally:
        db.dispose()
    seeded.seconds = time.perf_counter() - started
    return seeded


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
        raise SetupError(
            f"{engine.url!r} is not empty ({len(tables)} tables): give an empty database, "
            "which the benchmark fills and empties again"
        )


def drop_everything(url: str) -> None:
    """Drop the tables the migrations created (the database was empty before)."""
    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


# --- the browser ----------------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
OLDER_LINK = re.compile(r'<a class="older" href="([^"]+)"')
ITEM = 'class="conversation-item'


def sign_in(client: httpx.Client) -> None:
    """As a browser: the form (and its CSRF cookie), then the POST, which sets the session."""
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


def check_page(response: httpx.Response, items: int | None) -> str | None:
    """Why an answer is not the expected queue page, or None when it is."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    found = response.text.count(ITEM)
    if items is not None and found != items:
        return f"{found} conversations on the page instead of {items}"
    if found == 0 and "Nothing here." not in response.text:
        return "not a queue page"
    return None


def deep_path(client: httpx.Client, path: str, pages: int) -> str:
    """The path of page ``pages`` of a queue, reached by following "Older conversations"."""
    for page in range(1, pages):
        response = client.get(path)
        error = check_page(response, PAGE_SIZE)
        found = OLDER_LINK.search(response.text)
        if error or found is None:
            raise SetupError(f"{path} (page {page}): {error or 'no Older conversations link'}")
        path = html.unescape(found.group(1))
    return path


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Scenario(Samples):
    name: str
    path: str
    samples: int
    items: int | None = PAGE_SIZE  # conversations each answer must list (None: any number)
    target_ms: float | None = None

    @property
    def median_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def passed(self) -> bool | None:
        if self.target_ms is None:
            return None
        return self.errors == 0 and self.median_ms < self.target_ms

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "requests": self.requests,
            "p50_ms": rounded(self.median_ms, 2),
            "p90_ms": rounded(self.percentile_ms(90), 2),
            "p99_ms": rounded(self.percentile_ms(99), 2),
            "errors": self.errors,
            "first_error": self.first_error,
            "server_cpu_ms_per_request": rounded(self.server_cpu_ms, 2),
            "other_processes_cpu_percent_of_machine": rounded(self.others_percent, 1),
            "target_p50_ms": self.target_ms,
            "pass": self.passed,
        }


def measure(client: httpx.Client, server: ChildProcess, scenario: Scenario, warmup: int) -> None:
    """``warmup`` unmeasured requests, then ``scenario.samples`` measured, one at a time."""
    for _ in range(warmup):
        error = check_page(client.get(scenario.path), scenario.items)
        if error:
            raise SetupError(f"{scenario.name}: GET {scenario.path}: {error}")
    with cpu_meter(server) as cpu:
        started = time.perf_counter()
        for _ in range(scenario.samples):
            sent = time.perf_counter()
            try:
                response = client.get(scenario.path)
            except httpx.HTTPError as exc:
                error: str | None = f"{type(exc).__name__}: {exc}"
            else:
                error = check_page(response, scenario.items)
            scenario.record(time.perf_counter() - sent, error)
        scenario.elapsed = time.perf_counter() - started
    scenario.cpu = cpu


def run_scenarios(options: Options, server: ChildProcess, seeded: Seeded) -> list[Scenario]:
    info = options.info_samples
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        sign_in(client)

        def expected(queue: str) -> int:
            return min(PAGE_SIZE, seeded.queues.get(queue, 0))

        search = f"/inbox?queue=all&status=any&q={SEARCH_TERM}"
        scenarios = [
            Scenario(
                "waiting",
                "/inbox?queue=waiting",
                options.samples,
                items=expected("waiting"),
                target_ms=TARGET_MS,
            ),
            Scenario("all", "/inbox?queue=all", info, items=expected("all")),
            Scenario("mine", "/inbox?queue=mine", info, items=expected("mine")),
            Scenario("fin", "/inbox?queue=fin", info, items=expected("fin")),
            Scenario(
                f"waiting, page {DEEP_PAGE}",
                deep_path(client, "/inbox?queue=waiting", DEEP_PAGE),
                info,
            ),
            Scenario(
                f"all, page {DEEP_PAGE}", deep_path(client, "/inbox?queue=all", DEEP_PAGE), info
            ),
            Scenario(f"search {SEARCH_TERM!r}", search, info, items=None),
        ]
        for scenario in scenarios:
            log(f"  {scenario.name}: {scenario.samples} requests after {options.warmup} warm-up")
            measure(client, server, scenario, options.warmup)
    return scenarios


# --- output ---------------------------------------------------------------------------------


@dataclass
class Options:
    conversations: int
    samples: int
    info_samples: int
    warmup: int
    database_url: str | None
    as_json: bool


def busiest_others(scenarios: Sequence[Scenario]) -> float | None:
    return busiest(s.others_percent for s in scenarios)


def print_table(options: Options, seeded: Seeded, backend: str, scenarios: list[Scenario]) -> None:
    cores = os.cpu_count() or 0
    print(
        f"findesk inbox queue benchmark on {backend} (Python {platform.python_version()}, "
        f"{cores} cores)\n"
        f"seeded {seeded.conversations:,} conversations, {seeded.messages:,} messages, "
        f"{seeded.tags:,} tags, {seeded.end_users:,} end users in {seeded.seconds:.1f} s; "
        f"open: " + ", ".join(f"{q} {n:,}" for q, n in sorted(seeded.queues.items()))
    )
    print(
        f"Sequential GETs on one keep-alive connection, after {options.warmup} warm-up requests."
        f"\nNote: this process and the server (one uvicorn worker) share these {cores} cores;"
        f"\n'others' is the CPU used by processes outside the benchmark (% of the machine)"
        + (", the database server's included" if backend != "SQLite" else "")
        + ".\n"
    )
    header = (
        f"{'scenario':<22} {'requests':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'srv CPU ms/req':>14} {'others':>6}  target"
    )
    print(header)
    print("-" * len(header))
    for s in scenarios:
        verdict = "" if s.passed is None else ("PASS" if s.passed else "FAIL")
        target = "" if s.target_ms is None else f"p50 < {s.target_ms:g} ms: {verdict}"
        print(
            f"{s.name:<22} {s.requests:>8} {s.median_ms:>7.1f} "
            f"{s.percentile_ms(90):>7.1f} {s.percentile_ms(99):>7.1f} {s.errors:>6} "
            f"{cell(s.server_cpu_ms, '.1f'):>14} {cell(s.others_percent, '.0f', '%'):>6}  "
            f"{target}"
        )
    for s in scenarios:
        if s.first_error:
            print(f"first error of {s.name}: {s.first_error}")
    waiting = scenarios[0]
    print(
        f"\nWaiting for a human, median {waiting.median_ms:.1f} ms "
        f"(must be < {TARGET_MS:g} ms, no errors): {'PASS' if waiting.passed else 'FAIL'}"
    )
    print_busy_warning(busiest_others(scenarios))


def to_json(
    options: Options, seeded: Seeded, backend: str, scenarios: list[Scenario]
) -> dict[str, Any]:
    others = busiest_others(scenarios)
    return {
        "config": {
            "database": backend,
            "conversations": options.conversations,
            "samples": options.samples,
            "info_samples": options.info_samples,
            "warmup": options.warmup,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "note": "the benchmark and the server share the same CPU cores; other processes "
            "include the database server, if any",
            "other_processes_max_cpu_percent_of_machine": rounded(others, 1),
        },
        "seed": {
            "seconds": round(seeded.seconds, 2),
            "conversations": seeded.conversations,
            "messages": seeded.messages,
            "tags": seeded.tags,
            "end_users": seeded.end_users,
            "open_by_queue": seeded.queues,
        },
        "scenarios": {s.name: s.to_json() for s in scenarios},
        "target_p50_ms": TARGET_MS,
        "pass": bool(scenarios[0].passed) and not any(s.errors for s in scenarios),
    }


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--conversations", type=int, default=100_000, help="conversations seeded (100,000)"
    )
    parser.add_argument(
        "--samples", type=int, default=200, help="measured requests of the waiting queue (200)"
    )
    parser.add_argument(
        "--info-samples",
        type=int,
        default=50,
        help="measured requests of each other scenario (50)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="warm-up requests each (10)")
    parser.add_argument(
        "--database-url",
        help="an empty PostgreSQL database to use instead of SQLite, filled and emptied again, "
        "e.g. postgresql+psycopg://user:pass@localhost/findesk_bench",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.conversations < 5000 or args.samples < 1 or args.info_samples < 1 or args.warmup < 0:
        parser.error("conversations must be >= 5000, samples >= 1, warmup >= 0")
    return Options(
        args.conversations,
        args.samples,
        args.info_samples,
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
            # Where findesk's default settings put it.
            url, backend = f"sqlite:///{data_dir / 'findesk.db'}", "SQLite"

        log(f"seeding {options.conversations:,} conversations into {backend} ...")
        seeded = seed(url, options.conversations)
        log(f"  seeded in {seeded.seconds:.1f} s")

        port = free_port()
        server = ChildProcess(
            "findesk",
            serve_command(port),
            data_dir / "findesk.log",
            # The environment of a user who chose only a data folder (and maybe a database).
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
    waiting = scenarios[0]
    if not waiting.passed:
        log(f"FAIL: waiting queue median {waiting.median_ms:.1f} ms (target < {TARGET_MS:g} ms)")
    failed = sum(s.errors for s in scenarios)
    if failed:
        log(f"FAIL: {failed} requests failed")
    return 0 if waiting.passed and not failed else 1


if __name__ == "__main__":
    run_main(main)
