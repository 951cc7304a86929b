"""Benchmark of the Fin API against a bare ASGI + SQLite baseline.

Run: ``.venv/bin/python bench/fin_api.py [--concurrency N] [--duration S] [--json]``

What it does:

1. Migrates a SQLite file in a temporary folder and seeds it through the domain services (not
   over HTTP, to be quick): an end user, a conversation with 10 messages, one with 10,000 (the
   bulk inserted in one transaction), a conversation that the write scenario grows, and an
   OAuth client.
2. Starts two real server processes on 127.0.0.1, each uvicorn with one worker:
   findesk exactly as ``findesk serve`` runs it (default settings, only the data folder set),
   and a bare ASGI callable (no framework) whose one endpoint does one SQLite primary-key read
   on the same file. It fetches a bearer token from ``POST /oauth/token``.
3. This process is the load generator: an asyncio closed loop of httpx requests (HTTP/1.1
   keep-alive) at a fixed concurrency, for a fixed time per scenario after a warm-up.
4. Measures get-messages with ``after_id`` on the 10,000-message conversation against the
   10-message one, sequentially; the ratio of their medians must stay under 1.5.
5. The cost of the Fin call ledger: a second findesk process on the same database, with
   ``FINDESK_FIN_LEDGER_ENABLED=false``, serves every Fin scenario too. Each scenario is
   measured on both in ``--rounds`` rounds that alternate which one goes first, so that drift
   falls on both alike; the report puts throughput and server CPU per request side by side and
   the ledger's cost in %, which must stay within 10% of throughput.

Exit status: 0 when every check passes, 1 when the after_id ratio is too high, the ledger costs
more than 10% of throughput or a request failed, 2 when the set-up failed, 130 when interrupted
(Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import platform
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from sqlalchemy import insert, select

from findesk.agents.service import ensure_fin_agent
from findesk.auth.service import create_client
from findesk.conversations.models import Message
from findesk.conversations.service import Author, NewMessage, add_message, open_conversation
from findesk.kit import ids
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.users.service import create_user

from benchkit import (
    ChildProcess,
    CpuUse,
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
    run_lifespan,
    run_main,
    send_json,
    serve_command,
)

SHORT_CONVERSATION = 10
LONG_CONVERSATION = 10_000
AFTER_ID_LIMIT = 1.5  # the issue's bound on p50(10,000 messages) / p50(10 messages)
BARE_PATH = "/conversation"
SERVE_BARE = "_serve-bare"  # internal sub-command: this file, run as the baseline server
STARTUP_TIMEOUT = 30.0
CLIENT_BOUND_PERCENT = 75.0  # load generator CPU (% of a core) from which it limits throughput
LEDGER_COST_LIMIT = 10.0  # the issue's bound: % of Fin API throughput the ledger may cost
LEDGER_SETTLE = 0.3  # s after a run, still metered: the ledger writes its last batch (200 ms)


# --- the baseline: a bare ASGI app ----------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BareSQLiteApp:
    """A raw ASGI callable with one endpoint, ``GET /conversation?id=``: one SQLite primary-key
    read, answered as a small JSON object. It is the floor findesk is compared with.

    To be fair to findesk, the read runs off the event loop in a thread pool as large as the one
    FastAPI runs sync endpoints in (anyio's default of 40), with one connection per thread.
    """

    def __init__(self, db_path: str, threads: int = 40) -> None:
        self.db_path = db_path
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite")

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit: each SELECT is its own read transaction. Same busy timeout as findesk.
            connection = sqlite3.connect(self.db_path, isolation_level=None)
            connection.execute("PRAGMA busy_timeout=30000")
            self._local.connection = connection
        return connection

    def _read(self, conversation_id: str) -> dict[str, Any] | None:
        row = (
            self._connection()
            .execute(
                "SELECT id, status, user_id, title, updated_at FROM conversations WHERE id = ?",
                (conversation_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        keys = ("id", "status", "user_id", "title", "updated_at")
        return dict(zip(keys, row, strict=True))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send, self._stop_pool)
            return
        if scope["type"] != "http":
            return
        wanted = parse_qs(scope["query_string"].decode("latin-1")).get("id")
        if scope["path"] != BARE_PATH or not wanted:
            await send_json(send, 404, {"error": "not found"})
            return
        loop = asyncio.get_running_loop()
        row = await loop.run_in_executor(self._pool, self._read, wanted[0])
        await send_json(send, 200 if row else 404, row or {"error": "no such conversation"})

    def _stop_pool(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def serve_bare(db_path: str, port: int) -> None:
    """Serve the baseline with uvicorn exactly as ``findesk serve`` serves findesk."""
    uvicorn.run(
        BareSQLiteApp(db_path), host="127.0.0.1", port=port, log_level="info", access_log=False
    )


# --- seeding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    user_id: str
    short_id: str  # the 10-message conversation
    long_id: str  # the 10,000-message conversation
    write_id: str  # the conversation the create-message scenario grows
    short_after_id: str  # last-but-one message of each, so that after_id returns one message
    long_after_id: str
    client_id: str
    client_secret: str


def seed(db_url: str) -> Seed:
    """Create the data through the domain services, as findesk itself would."""
    upgrade(db_url)
    db = Database(db_url)
    try:
        with db.transaction() as session:
            default_email = Settings.model_fields["fin_agent_email"].default
            fin = ensure_fin_agent(session, default_email)
            user, _ = create_user(
                session, object_id="bench-user", name="Bench User", email="bench@example.com"
            )
            client, secret = create_client(session, "bench")
            fin_author, user_author = Author("agent", fin.id), Author("end_user", user.id)

            def start(title: str) -> str:
                conversation, _, _ = open_conversation(
                    session,
                    user_id=user.id,
                    title=title,
                    assignee_id=fin.id,
                    first=NewMessage(author=user_author, body="<p>Hello, I need help.</p>"),
                    actor=FIN,
                )
                return conversation.id

            short_id = start("10 messages")
            for n in range(1, SHORT_CONVERSATION):
                author = fin_author if n % 2 else user_author
                add_message(session, short_id, NewMessage(author, f"<p>Message {n}</p>"), FIN)
            long_id = start("10,000 messages")
            write_id = start("grown by the create-message scenario")
            user_id, client_id = user.id, client.id

        # add_message costs about a millisecond (sanitising, locking, a flush) and 10,000 of
        # them would dominate the run: insert the rest of the long conversation in bulk, with
        # the columns add_message would set, in one transaction.
        with db.transaction() as session:
            start_at = utcnow() - timedelta(seconds=LONG_CONVERSATION)
            rows: list[dict[str, Any]] = [
                {
                    "id": ids.new_id(ids.MESSAGE),
                    "conversation_id": long_id,
                    "message_type": "comment",
                    "body": f"<p>Message {n}</p>",
                    "author_type": "agent" if n % 2 else "end_user",
                    "author_agent_id": fin.id if n % 2 else None,
                    "author_user_id": None if n % 2 else user_id,
                    "visibility": "public",
                    "attachments": [],
                    "created_at": start_at + timedelta(seconds=n),
                }
                for n in range(1, LONG_CONVERSATION)
            ]
            session.execute(insert(Message), rows)

        with db.read_session() as session:

            def last_but_one(conversation_id: str) -> str:
                query = (
                    select(Message.id)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(Message.seq.desc())
                    .offset(1)
                    .limit(1)
                )
                return session.scalars(query).one()

            return Seed(
                user_id=user_id,
                short_id=short_id,
                long_id=long_id,
                write_id=write_id,
                short_after_id=last_but_one(short_id),
                long_after_id=last_but_one(long_id),
                client_id=client_id,
                client_secret=secret,
            )
    finally:
        db.dispose()


# --- load generation ------------------------------------------------------------------------

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Result(Samples):
    """One measured run: latencies in seconds (successful requests only), errors and CPU."""

    name: str
    concurrency: int

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def client_cpu_percent(self) -> float | None:
        """The load generator's CPU use, in percent of one core."""
        if self.cpu is None or not self.elapsed:
            return None
        return 100 * self.cpu.here / self.elapsed

    @property
    def client_bound(self) -> bool:
        """Whether the load generator, near a full core, rather than the server set the pace."""
        return (self.client_cpu_percent or 0.0) >= CLIENT_BOUND_PERCENT

    @classmethod
    def merged(cls, parts: Sequence[Result]) -> Result:
        """One result of several runs of the same scenario (the rounds)."""
        result = cls(parts[0].name, parts[0].concurrency)
        cpu: CpuUse | None = CpuUse(target=0.0, others=0.0)
        for part in parts:
            result.latencies += part.latencies
            result.errors += part.errors
            result.first_error = result.first_error or part.first_error
            result.elapsed += part.elapsed
            if cpu is None or part.cpu is None:
                cpu = None
                continue
            cpu.target = _plus(cpu.target, part.cpu.target)
            cpu.others = _plus(cpu.others, part.cpu.others)
            cpu.here += part.cpu.here
            cpu.elapsed += part.cpu.elapsed
        result.cpu = cpu
        return result

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "seconds": round(self.elapsed, 3),
            "requests_per_second": round(self.throughput, 1),
            "p50_ms": round(self.percentile_ms(50), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "errors": self.errors,
            "first_error": self.first_error,
            "server_cpu_ms_per_request": rounded(self.server_cpu_ms, 3),
            "client_cpu_percent_of_a_core": rounded(self.client_cpu_percent, 1),
            "other_processes_cpu_percent_of_machine": rounded(self.others_percent, 1),
            "client_bound": self.client_bound,
        }


def _plus(total: float | None, value: float | None) -> float | None:
    """A sum that stays unknown (None) once any part of it is."""
    return None if total is None or value is None else total + value


async def timed(
    client: httpx.AsyncClient, request: Request, expected: int
) -> tuple[float, str | None]:
    """Send one request; its latency and, if it failed, why."""
    started = time.perf_counter()
    try:
        response = await request(client)
    except httpx.HTTPError as exc:
        return time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
    latency = time.perf_counter() - started
    if response.status_code != expected:
        return latency, f"HTTP {response.status_code}: {response.text[:200]}"
    return latency, None


async def closed_loop(
    client: httpx.AsyncClient,
    request: Request,
    *,
    name: str,
    concurrency: int,
    duration: float,
    expected: int = 200,
) -> Result:
    """``concurrency`` workers, each sending its next request as soon as the last one is
    answered, until ``duration`` has passed: a fixed number of requests in flight."""
    result = Result(name, concurrency)
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            result.record(*await timed(client, request, expected))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class Options:
    concurrency: int
    duration: float
    warmup: float
    samples: int
    as_json: bool
    rounds: int = 6


@dataclass
class LedgerCost:
    """One Fin scenario on findesk with the ledger on (as it ships) and off: every round's
    pair of runs, and all of each side's runs together.

    The costs are the median over the rounds of each round's cost: two runs of one round are
    seconds apart, so a neighbour's burst of CPU that skews one round moves the median little
    (on a shared machine, it moves the totals a lot)."""

    pairs: list[tuple[Result, Result]]  # (on, off), one per round

    @property
    def on(self) -> Result:
        return Result.merged([on for on, _ in self.pairs])

    @property
    def off(self) -> Result:
        return Result.merged([off for _, off in self.pairs])

    @property
    def throughput_cost_percent(self) -> float:
        """How much throughput the ledger takes, in % of the throughput without it."""
        return statistics.median(
            100 * (off.throughput - on.throughput) / off.throughput for on, off in self.pairs
        )

    @property
    def cpu_cost_percent(self) -> float | None:
        """How much more server CPU per request the ledger takes, in %."""
        costs = []
        for on, off in self.pairs:
            on_ms, off_ms = on.server_cpu_ms, off.server_cpu_ms
            if on_ms is None or not off_ms:
                return None
            costs.append(100 * (on_ms - off_ms) / off_ms)
        return statistics.median(costs)


@dataclass
class Report:
    options: Options
    seed_seconds: float
    scenarios: list[Result] = field(default_factory=list)
    after_id: dict[str, Result] = field(default_factory=dict)
    ledger: list[LedgerCost] = field(default_factory=list)

    @property
    def baseline(self) -> Result:
        return self.scenarios[0]

    def throughput_vs_bare(self, result: Result) -> float:
        return result.throughput / self.baseline.throughput

    def cpu_vs_bare(self, result: Result) -> float | None:
        """How many times the bare app's server CPU per request this scenario costs."""
        ours, bare = result.server_cpu_ms, self.baseline.server_cpu_ms
        return None if ours is None or not bare else ours / bare

    @property
    def after_id_ratio(self) -> float:
        return self.after_id["10000"].percentile_ms(50) / self.after_id["10"].percentile_ms(50)

    @property
    def after_id_ok(self) -> bool:
        return self.after_id_ratio < AFTER_ID_LIMIT

    @property
    def ledger_cost_percent(self) -> float:
        """The ledger's throughput cost over every Fin scenario: their mean."""
        costs = [cost.throughput_cost_percent for cost in self.ledger]
        return sum(costs) / len(costs)

    @property
    def ledger_ok(self) -> bool:
        return self.ledger_cost_percent <= LEDGER_COST_LIMIT

    @property
    def results(self) -> list[Result]:
        return [*self.scenarios, *self.after_id.values(), *(c.off for c in self.ledger)]

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.results)

    @property
    def busiest_others(self) -> float | None:
        """The most CPU other processes used during a measurement, in % of the machine."""
        return busiest(r.others_percent for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": {
                "concurrency": self.options.concurrency,
                "duration_s": self.options.duration,
                "warmup_s": self.options.warmup,
                "after_id_samples": self.options.samples,
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "note": "load generator and servers share the same CPU cores",
                "other_processes_max_cpu_percent_of_machine": (
                    None if self.busiest_others is None else round(self.busiest_others, 1)
                ),
                "seed_seconds": round(self.seed_seconds, 2),
            },
            "scenarios": {r.name: r.to_json() for r in self.scenarios},
            "throughput_vs_bare": {
                r.name: round(self.throughput_vs_bare(r), 3) for r in self.scenarios[1:]
            },
            "server_cpu_per_request_vs_bare": {
                r.name: None if (x := self.cpu_vs_bare(r)) is None else round(x, 2)
                for r in self.scenarios[1:]
            },
            "after_id": {
                **{f"{k}_messages": v.to_json() for k, v in self.after_id.items()},
                "p50_ratio_10000_over_10": round(self.after_id_ratio, 3),
                "limit": AFTER_ID_LIMIT,
                "pass": self.after_id_ok,
            },
            "ledger": {
                "rounds": self.options.rounds,
                "cost": "median over the rounds of each round's cost (on vs off back to back)",
                "scenarios": {
                    cost.on.name: {
                        "requests_per_second_on": round(cost.on.throughput, 1),
                        "requests_per_second_off": round(cost.off.throughput, 1),
                        "throughput_cost_percent": round(cost.throughput_cost_percent, 2),
                        "server_cpu_ms_per_request_on": rounded(cost.on.server_cpu_ms, 3),
                        "server_cpu_ms_per_request_off": rounded(cost.off.server_cpu_ms, 3),
                        "server_cpu_cost_percent": rounded(cost.cpu_cost_percent, 2),
                        "errors_off": cost.off.errors,
                    }
                    for cost in self.ledger
                },
                "mean_throughput_cost_percent": round(self.ledger_cost_percent, 2),
                "limit_percent": LEDGER_COST_LIMIT,
                "pass": self.ledger_ok,
            },
            "errors": self.errors,
        }


async def fetch_token(base_url: str, seed: Seed) -> str:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(seed.client_id, seed.client_secret),
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


async def check_once(
    client: httpx.AsyncClient, request: Request, expected: int, what: str, items: int | None = None
) -> Any:
    """One request before a scenario, checked in full, so that a broken setup fails loudly
    rather than measuring errors; ``items``: how many list items the answer must have."""
    response = await request(client)
    if response.status_code != expected:
        raise SetupError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if items is not None and len(body) != items:
        raise SetupError(f"{what}: expected {items} items, got {len(body)}")
    return body


async def run_benchmark(
    options: Options,
    seed: Seed,
    findesk: ChildProcess,
    findesk_off: ChildProcess,
    bare: ChildProcess,
    report: Report,
) -> None:
    """Get a token, check the endpoints once, then measure each scenario (the Fin ones with
    the ledger on and off) and the after_id comparison, into ``report``."""
    token = await fetch_token(findesk.base_url, seed)
    c = options.concurrency
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    bare_client = httpx.AsyncClient(base_url=bare.base_url, limits=limits, timeout=60)

    def fin_client_of(server: ChildProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{server.base_url}/api/fin",
            headers={"Authorization": f"Bearer {token}"},  # same database: the same token
            limits=limits,
            timeout=60,
        )

    fin_client, fin_client_off = fin_client_of(findesk), fin_client_of(findesk_off)
    servers = (findesk, findesk_off, bare)
    object_ids = itertools.count()
    run_tag = uuid.uuid4().hex[:8]

    def bare_read(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get(BARE_PATH, params={"id": seed.short_id})

    def get_conversation(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get("/conversation", params={"conversation_id": seed.short_id})

    def get_messages(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get("/messages", params={"conversation_id": seed.short_id})

    def create_message(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(
            "/messages",
            json={
                "conversation_id": seed.write_id,
                "object_id": f"bench-{run_tag}-{next(object_ids)}",
                "author": {"user_type": "end_user", "id": seed.user_id},
                "body": "<p>Is there any news on my order?</p>",
            },
        )

    fin_scenarios: Sequence[tuple[str, Request, int]] = (
        ("Fin: GET /conversation", get_conversation, 200),
        ("Fin: GET /messages (10 msgs)", get_messages, 200),
        ("Fin: POST /messages", create_message, 201),
    )

    async def measure(
        name: str,
        client: httpx.AsyncClient,
        request: Request,
        expected: int,
        server: ChildProcess,
        duration: float,
        *,
        warmup: float = 0.0,
        settle: float = 0.0,
    ) -> Result:
        """One metered run (after ``warmup`` s unmetered); ``settle``: idle seconds still
        metered after it."""
        run = functools.partial(
            closed_loop, client, request, name=name, concurrency=c, expected=expected
        )
        if warmup:
            await run(duration=warmup)
        with cpu_meter(server, ours=servers) as cpu:
            result = await run(duration=duration)
            await asyncio.sleep(settle)
        result.cpu = cpu
        return result

    try:
        await check_once(bare_client, bare_read, 200, "bare read")
        for client in (fin_client, fin_client_off):
            await check_once(client, get_messages, 200, "get messages", SHORT_CONVERSATION)
        name = "bare ASGI: SQLite PK read"
        log(f"  {name}: {options.warmup:g} s warm-up, {options.duration:g} s measured")
        report.scenarios.append(
            await measure(
                name, bare_client, bare_read, 200, bare, options.duration, warmup=options.warmup
            )
        )
        each = options.duration / options.rounds
        for name, request, expected in fin_scenarios:
            log(
                f"  {name}: {options.warmup:g} s warm-up each, then ledger on and off "
                f"alternately, {options.rounds} x {each:.2g} s each"
            )
            sides = {
                True: (name, fin_client, findesk),
                False: (f"{name} (ledger off)", fin_client_off, findesk_off),
            }
            for label, client, _server in sides.values():
                await closed_loop(
                    client,
                    request,
                    name=label,
                    concurrency=c,
                    duration=options.warmup,
                    expected=expected,
                )
            runs: dict[bool, list[Result]] = {True: [], False: []}
            for round_no in range(options.rounds):
                # Alternate which goes first, so that drift falls on both alike.
                for ledger_on in (True, False) if round_no % 2 == 0 else (False, True):
                    label, client, server = sides[ledger_on]
                    runs[ledger_on].append(
                        await measure(
                            label, client, request, expected, server, each, settle=LEDGER_SETTLE
                        )
                    )
            cost = LedgerCost(list(zip(runs[True], runs[False], strict=True)))
            report.scenarios.append(cost.on)
            report.ledger.append(cost)
        log(f"  after_id: {options.samples} sequential requests on each conversation")
        report.after_id = await measure_after_id(
            fin_client, seed, options.samples, findesk, servers
        )
    finally:
        await bare_client.aclose()
        await fin_client.aclose()
        await fin_client_off.aclose()


async def measure_after_id(
    client: httpx.AsyncClient,
    seed: Seed,
    samples: int,
    server: ChildProcess,
    servers: Sequence[ChildProcess],
) -> dict[str, Result]:
    """Get messages after the last-but-one message, one request at a time, on both
    conversations. The two series alternate request by request, so that any drift of the
    machine (other processes, CPU frequency) falls on both alike."""
    targets = {
        "10": (seed.short_id, seed.short_after_id),
        "10000": (seed.long_id, seed.long_after_id),
    }

    def request_for(conversation_id: str, after_id: str) -> Request:
        def request(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            params = {"conversation_id": conversation_id, "after_id": after_id}
            return client.get("/messages", params=params)

        return request

    requests = {key: request_for(*target) for key, target in targets.items()}
    for key, request in requests.items():
        await check_once(client, request, 200, f"after_id on {key} messages", items=1)

    async def alternate(rounds: int, results: dict[str, Result]) -> None:
        for _ in range(rounds):
            for key, request in requests.items():
                latency, error = await timed(client, request, 200)
                results[key].elapsed += latency
                results[key].record(latency, error)

    def fresh() -> dict[str, Result]:
        return {key: Result(f"after_id, {key} messages", concurrency=1) for key in targets}

    await alternate(max(10, samples // 10), fresh())  # warm-up
    results = fresh()
    with cpu_meter(server, ours=servers) as cpu:
        await alternate(samples, results)
    # The CPU figures cover both series: give each its share by the time it took.
    total = sum(result.elapsed for result in results.values())
    for result in results.values():
        share = result.elapsed / total
        result.cpu = cpu.share(share)
    return results


# --- output ---------------------------------------------------------------------------------


def print_table(report: Report) -> None:
    o = report.options
    cores = os.cpu_count() or 0
    print(
        f"findesk Fin API benchmark: concurrency {o.concurrency}, {o.duration:g} s per scenario "
        f"after {o.warmup:g} s warm-up (Python {platform.python_version()}, {cores} cores)"
    )
    print(
        f"Note: the load generator (this process) and both servers (one uvicorn worker each)\n"
        f"share these {cores} cores. 'client' is the load generator's CPU (% of a core),\n"
        f"'others' the CPU used by processes outside the benchmark (% of the machine).\n"
    )
    header = (
        f"{'scenario':<30} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'srv CPU ms/req':>14} {'client':>7} {'others':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in report.scenarios:
        client = cell(r.client_cpu_percent, ".0f", "%") + ("*" if r.client_bound else " ")
        print(
            f"{r.name:<30} {r.throughput:>7.0f} {r.percentile_ms(50):>7.2f} "
            f"{r.percentile_ms(99):>7.2f} {r.errors:>6} {cell(r.server_cpu_ms, '.2f'):>14} "
            f"{client:>7} {cell(r.others_percent, '.0f', '%'):>6}"
        )
    if any(r.client_bound for r in report.scenarios):
        print(
            f"* the load generator used {CLIENT_BOUND_PERCENT:.0f}% of a core or more: there the "
            f"client, not the server,\n  set the pace, and req/s is a lower bound for the server."
        )
    header = f"\n{'Fin API / bare ASGI':<30} {'req/s':>7} {'srv CPU per request':>20}"
    print(header)
    print("-" * (len(header) - 1))
    for r in report.scenarios[1:]:
        print(
            f"{r.name:<30} {report.throughput_vs_bare(r):>6.2f}x "
            f"{cell(report.cpu_vs_bare(r), '.1f', 'x'):>20}"
        )
    print(
        f"\nget messages with after_id = the last-but-one message (1 message back): "
        f"sequential,\n{o.samples} requests on each conversation, alternating"
    )
    header = (
        f"{'conversation':<30} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'srv CPU ms/req':>14} {'others':>6}"
    )
    print(header)
    print("-" * len(header))
    for key, label in (("10", "10 messages"), ("10000", "10,000 messages")):
        r = report.after_id[key]
        print(
            f"{label:<30} {r.percentile_ms(50):>7.2f} {r.percentile_ms(99):>7.2f} "
            f"{r.errors:>6} {cell(r.server_cpu_ms, '.2f'):>14} "
            f"{cell(r.others_percent, '.0f', '%'):>6}"
        )
    print(
        f"\nThe Fin call ledger: findesk as it ships (on) and with FINDESK_FIN_LEDGER_ENABLED="
        f"false (off),\nsame run, {o.rounds} rounds per scenario (on and off back to back, "
        f"alternating which goes first);\ncost: the median of the rounds' costs"
    )
    header = (
        f"{'scenario':<30} {'req/s on':>9} {'req/s off':>9} {'cost':>7} "
        f"{'CPU ms/req on':>14} {'off':>6} {'cost':>7}"
    )
    print(header)
    print("-" * len(header))
    for cost in report.ledger:
        print(
            f"{cost.on.name:<30} {cost.on.throughput:>9.0f} {cost.off.throughput:>9.0f} "
            f"{cost.throughput_cost_percent:>6.1f}% {cell(cost.on.server_cpu_ms, '.3f'):>14} "
            f"{cell(cost.off.server_cpu_ms, '.3f'):>6} {cell(cost.cpu_cost_percent, '.1f', '%'):>7}"
        )
    print()
    verdict = "PASS" if report.after_id_ok else "FAIL"
    print(
        f"after_id p50 ratio 10,000 / 10 messages: {report.after_id_ratio:.2f} "
        f"(must be < {AFTER_ID_LIMIT}): {verdict}"
    )
    verdict = "PASS" if report.ledger_ok else "FAIL"
    print(
        f"ledger throughput cost, mean of the Fin scenarios: {report.ledger_cost_percent:.1f}% "
        f"(must be <= {LEDGER_COST_LIMIT:g}%): {verdict}"
    )
    verdict = "PASS" if report.errors == 0 else "FAIL"
    print(f"failed requests: {report.errors} (must be 0): {verdict}")
    print_busy_warning(report.busiest_others)


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up (1)")
    parser.add_argument(
        "--samples", type=int, default=300, help="after_id requests per conversation (300)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="alternating runs of ledger on / off per Fin scenario, sharing --duration (6)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if (
        args.concurrency < 1
        or args.duration <= 0
        or args.warmup < 0
        or args.samples < 1
        or args.rounds < 1
    ):
        parser.error("concurrency, samples and rounds must be >= 1, duration > 0, warmup >= 0")
    return Options(
        args.concurrency, args.duration, args.warmup, args.samples, args.json, args.rounds
    )


def main(argv: Sequence[str]) -> int:
    if argv[:1] == [SERVE_BARE]:
        serve_bare(argv[1], int(argv[2]))
        return 0
    options = parse_args(argv)
    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(bench_folder())
        db_path = data_dir / "findesk.db"  # where findesk's default settings put it

        log(f"seeding {db_path} ...")
        started = time.perf_counter()
        seeded = seed(f"sqlite:///{db_path}")
        seed_seconds = time.perf_counter() - started
        log(f"  seeded in {seed_seconds:.1f} s")

        findesk_port, off_port, bare_port = free_port(), free_port(), free_port()
        findesk = ChildProcess(
            "findesk",
            serve_command(findesk_port),
            data_dir / "findesk.log",
            env=findesk_env(data_dir),
            port=findesk_port,
        )
        # The same findesk on the same database, with the Fin call ledger switched off.
        findesk_off = ChildProcess(
            "findesk (ledger off)",
            serve_command(off_port),
            data_dir / "findesk-ledger-off.log",
            env=findesk_env(data_dir, fin_ledger_enabled="false"),
            port=off_port,
        )
        bare = ChildProcess(
            "bare ASGI app",
            [
                sys.executable,
                str(Path(__file__).resolve()),
                SERVE_BARE,
                str(db_path),
                str(bare_port),
            ],
            data_dir / "bare.log",
            port=bare_port,
        )
        log("starting servers ...")
        for server in (findesk, bare):
            stack.callback(server.stop)
            server.start()
        findesk.wait_ready("/healthz", STARTUP_TIMEOUT)
        # Started once the first one has migrated the database, so that they never race at it.
        stack.callback(findesk_off.stop)
        findesk_off.start()
        findesk_off.wait_ready("/healthz", STARTUP_TIMEOUT)
        bare.wait_ready(f"{BARE_PATH}?id={seeded.short_id}", STARTUP_TIMEOUT)

        report = Report(options, seed_seconds)
        asyncio.run(run_benchmark(options, seeded, findesk, findesk_off, bare, report))

    if options.as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_table(report)
    if not report.after_id_ok:
        log(f"FAIL: after_id p50 ratio {report.after_id_ratio:.2f} >= {AFTER_ID_LIMIT}")
    if not report.ledger_ok:
        log(
            f"FAIL: the ledger costs {report.ledger_cost_percent:.1f}% of throughput "
            f"(> {LEDGER_COST_LIMIT:g}%)"
        )
    if report.errors:
        log(f"FAIL: {report.errors} requests failed")
    return 0 if report.after_id_ok and report.ledger_ok and report.errors == 0 else 1


if __name__ == "__main__":
    run_main(main)
