"""Benchmark of the notifier: how soon Fin hears of an agent's change, and how many deliveries
per second one worker makes.

Run: ``.venv/bin/python bench/notifier.py [--rate R] [--duration S] [--backlog N]
[--concurrency 8,32] [--database-url postgresql+psycopg://...] [--json]``

What it does:

1. Latency. Seeds a SQLite file in a temporary folder through the domain services: the Fin bot,
   a human agent with a token, an end user and one conversation per planned action, each opened
   by Fin (so that no outbox event exists yet). Starts ``findesk serve`` as a real child process
   (default settings: its in-process notifier on, SQLite in the data folder) with Fin's webhook
   pointed at a stand-in for Fin in this process: an asyncio HTTP/1.1 server that answers 200 at
   once. Then makes agent-API actions at a steady rate (open loop: each starts on schedule,
   whether or not the earlier ones have been answered), alternately a public reply and a PATCH
   of the tags, each on a conversation of its own, after a warm-up.
   Measured for each action: from the moment its HTTP response arrives to the moment the
   stand-in receives the webhook call for its conversation. The change committed before the
   response was sent, and no event existed for the conversation before it, so that call is the
   first delivery that covers the change. The worker is woken by the commit and may call Fin
   before the response reaches us: such latencies are negative. Also given: from the moment the
   request was sent (an upper bound of commit to receipt).
2. Throughput. For each worker concurrency asked for (default: 8, findesk's default, and 32):
   a fresh database with a backlog of N events on N distinct conversations (inserted in bulk,
   all due), one ``findesk worker`` process (default settings but for
   FINDESK_NOTIFIER_CONCURRENCY) and the same stand-in for Fin. Measured: from the first call
   received to the last one, deliveries per second, and the worker's CPU time per delivery.
   At most ``--cap`` seconds each. Every call must be for a conversation not called before, and
   recorded as delivered once the worker has stopped (SIGTERM, which must end it with 0). SQLite
   by default; ``--database-url`` runs this part on that PostgreSQL database instead (it must
   hold no outbox events; the bench deletes those it inserted).

This process, the server or worker and the database share the machine's cores (2 here, and
other people's work may run on them too): the figures are those of a shared machine, and the
report says how busy other processes kept it.

Exit status: 0 when every check passes, 1 when an action failed, a change never reached Fin, a
conversation was called twice, a call was not recorded as delivered or the worker did not exit 0
on SIGTERM (not draining within ``--cap`` is no failure: the rate is the figure), 2 when the
set-up failed, 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, insert, select

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_agent_token
from findesk.conversations.service import Author, NewMessage, open_conversation
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.notifier.models import OutboxEvent
from findesk.users.service import create_user

from benchkit import (
    ChildProcess,
    CpuSnapshot,
    CpuUse,
    SetupError,
    bench_folder,
    busiest,
    cell,
    cpu_meter,
    findesk_command,
    findesk_env,
    finish,
    free_port,
    log,
    percent_of_machine,
    percentile,
    print_busy_warning,
    rounded,
    run_main,
    serve_command,
)

WEBHOOK_PATH = "/hooks/standalone/custom_helpdesk_conversation_event/bench"
WEBHOOK_KEY = "bench-webhook-key"
STARTUP_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 30.0  # for the last action's delivery, after the load
STOP_TIMEOUT = 15.0
CONVERSATION_PREFIX = "bench_"


# --- the stand-in for Fin -----------------------------------------------------------------------


class FakeFin:
    """Fin's webhook on 127.0.0.1: a minimal asyncio HTTP/1.1 server (keep-alive) that answers
    every call 200 at once and records, per conversation, when its first call arrived
    (``time.perf_counter()`` of this process, the clock the actions are timed with)."""

    def __init__(self) -> None:
        self.first_at: dict[str, float] = {}
        self.calls = 0
        self.doubles = 0  # calls for a conversation that had one already
        self.bad = 0  # calls without the key or with an unexpected body
        self.last_at = 0.0
        self.target = 0  # ``reached`` is set once this many conversations have had a call
        self.reached = asyncio.Event()
        self.on_first_call: list[Any] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def expect(self, conversations: int) -> None:
        self.target = conversations
        self.reached.clear()
        if len(self.first_at) >= conversations:
            self.reached.set()

    def reset(self) -> None:
        self.first_at.clear()
        self.calls = self.doubles = self.bad = 0
        self.last_at = 0.0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self._record(headers, body)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _record(self, headers: dict[str, str], body: bytes) -> None:
        at = time.perf_counter()
        self.calls += 1
        self.last_at = at
        try:
            conversation_id = str(json.loads(body)["conversation_id"])
        except (ValueError, KeyError, TypeError):
            self.bad += 1
            return
        if headers.get("x-webhook-key") != WEBHOOK_KEY or "x-findesk-delivery" not in headers:
            self.bad += 1
        if conversation_id in self.first_at:
            self.doubles += 1
            return
        self.first_at[conversation_id] = at
        if len(self.first_at) == 1:
            for callback in self.on_first_call:
                callback()
        if self.target and len(self.first_at) >= self.target:
            self.reached.set()


def webhook_env(data_dir: Path, fin: FakeFin, **settings: str) -> dict[str, str]:
    """A user's environment: the data folder and Fin's webhook, nothing else of findesk's."""
    return findesk_env(data_dir, fin_webhook_url=fin.url, fin_webhook_key=WEBHOOK_KEY, **settings)


# --- 1. latency from an agent's change to Fin -----------------------------------------------------


@dataclass(frozen=True)
class Seed:
    agent_token: str
    conversation_ids: list[str]


def seed_conversations(db_url: str, count: int) -> Seed:
    """Through the domain services: Fin opens ``count`` conversations (Fin's own changes are
    not echoed to Fin, so the outbox stays empty), and a human agent gets a token."""
    upgrade(db_url)
    db = Database(db_url)
    try:
        with db.transaction() as session:
            fin = ensure_fin_agent(session, Settings.model_fields["fin_agent_email"].default)
            agent = create_agent(session, email="bench.agent@example.com", name="Bench Agent")
            token = create_agent_token(session, agent)
            user, _ = create_user(
                session, object_id="bench-user", name="Bench User", email="bench@example.com"
            )
            first = NewMessage(author=Author("end_user", user.id), body="<p>Hello?</p>")
            conversation_ids = []
            for n in range(count):
                conversation, _, _ = open_conversation(
                    session,
                    user_id=user.id,
                    title=f"bench {n}",
                    assignee_id=fin.id,
                    first=first,
                    actor=FIN,
                )
                conversation_ids.append(conversation.id)
        with db.read_session() as session:
            pending = session.scalar(select(func.count()).select_from(OutboxEvent))
        if pending:
            raise SetupError(f"seeding recorded {pending} outbox events; expected none")
        return Seed(token, conversation_ids)
    finally:
        db.dispose()


@dataclass
class LatencyResult:
    rate: float
    duration: float
    warmup: float
    actions: int = 0  # measured (after the warm-up)
    errors: int = 0
    first_error: str | None = None
    undelivered: int = 0
    from_response: list[float] = field(default_factory=list)
    from_request: list[float] = field(default_factory=list)
    response_times: list[float] = field(default_factory=list)
    max_schedule_lag: float = 0.0  # how late the load generator started an action
    cpu: CpuUse | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.undelivered == 0 and self.actions > 0

    def to_json(self) -> dict[str, Any]:
        def ms(values: list[float], q: float) -> float | None:
            return None if not values else round(percentile(values, q) * 1000, 2)

        cpu = self.cpu
        return {
            "rate_per_s": self.rate,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "actions_measured": self.actions,
            "errors": self.errors,
            "first_error": self.first_error,
            "undelivered": self.undelivered,
            "from_response_ms": {
                "p50": ms(self.from_response, 50),
                "p99": ms(self.from_response, 99),
                "max": ms(self.from_response, 100),
                "negative": sum(1 for v in self.from_response if v < 0),
            },
            "from_request_ms": {
                "p50": ms(self.from_request, 50),
                "p99": ms(self.from_request, 99),
                "max": ms(self.from_request, 100),
            },
            "action_response_ms": {
                "p50": ms(self.response_times, 50),
                "p99": ms(self.response_times, 99),
            },
            "max_schedule_lag_ms": round(self.max_schedule_lag * 1000, 2),
            "server_cpu_percent_of_a_core": None
            if cpu is None or cpu.target is None or not self.elapsed
            else round(100 * cpu.target / self.elapsed, 1),
            "other_processes_cpu_percent_of_machine": None
            if cpu is None
            else rounded(cpu.others_percent, 1),
        }


async def measure_latency(options: Options, tmp: Path, fin: FakeFin) -> LatencyResult:
    result = LatencyResult(options.rate, options.duration, options.warmup)
    warmup_actions = round(options.rate * options.warmup)
    measured_actions = max(1, round(options.rate * options.duration))
    total = warmup_actions + measured_actions
    data_dir = tmp / "latency"
    data_dir.mkdir()
    log(f"latency: seeding {total} conversations ...")
    seeded = seed_conversations(f"sqlite:///{data_dir / 'findesk.db'}", total)

    port = free_port()
    server = ChildProcess(
        "findesk serve",
        serve_command(port),
        data_dir / "serve.log",
        env=webhook_env(data_dir, fin),
        cwd=data_dir,
        port=port,
    )
    base_url = server.base_url
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    client = httpx.AsyncClient(
        base_url=f"{base_url}/api/v1",
        headers={"Authorization": f"Bearer {seeded.agent_token}"},
        limits=limits,
        timeout=30,
    )
    try:
        server.start()

        async def healthy() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return (await client.get(f"{base_url}/healthz")).status_code == 200
            return False

        log("latency: starting findesk serve ...")
        await server.wait_for(healthy, "findesk serve did not answer", STARTUP_TIMEOUT)
        fin.reset()
        fin.expect(total)
        log(
            f"latency: {options.rate:g} actions/s, {options.warmup:g} s warm-up, "
            f"{options.duration:g} s measured"
        )
        sent_at: dict[str, float] = {}
        answered_at: dict[str, float] = {}

        async def act(n: int, conversation_id: str, scheduled: float) -> None:
            started = time.perf_counter()
            result.max_schedule_lag = max(result.max_schedule_lag, started - scheduled)
            sent_at[conversation_id] = started
            try:
                if n % 2 == 0:
                    path = f"/conversations/{conversation_id}/messages"
                    response = await client.post(path, json={"body": f"<p>Reply {n}</p>"})
                    expected = 201
                else:
                    path = f"/conversations/{conversation_id}"
                    response = await client.patch(path, json={"tags": ["bench", f"n{n}"]})
                    expected = 200
            except httpx.HTTPError as exc:
                error: str | None = f"{type(exc).__name__}: {exc}"
            else:
                answered_at[conversation_id] = time.perf_counter()
                error = None
                if response.status_code != expected:
                    error = f"HTTP {response.status_code}: {response.text[:200]}"
            if error is not None:
                result.errors += 1
                result.first_error = result.first_error or error

        with cpu_meter(server) as cpu:
            started = time.perf_counter()
            tasks = []
            for n, conversation_id in enumerate(seeded.conversation_ids):
                scheduled = started + n / options.rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(act(n, conversation_id, scheduled)))
            await asyncio.gather(*tasks)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fin.reached.wait(), DELIVERY_TIMEOUT)
            result.elapsed = time.perf_counter() - started
        result.cpu = cpu

        measured = seeded.conversation_ids[warmup_actions:]
        result.actions = len(measured)
        for conversation_id in measured:
            received = fin.first_at.get(conversation_id)
            if conversation_id not in answered_at:
                continue  # failed: counted in errors
            if received is None:
                result.undelivered += 1
                continue
            result.from_response.append(received - answered_at[conversation_id])
            result.from_request.append(received - sent_at[conversation_id])
            result.response_times.append(answered_at[conversation_id] - sent_at[conversation_id])
        if fin.doubles or fin.bad:
            log(f"  note: {fin.doubles} repeated and {fin.bad} malformed calls")
    finally:
        await client.aclose()
        code, _ = await server.stop_async(STOP_TIMEOUT)
        if code not in (0, -signal.SIGTERM, None):  # uvicorn re-raises the SIGTERM it handled
            log(f"  findesk serve exited {code}; its log ends with:\n{server.log_tail()}")
    return result


# --- 2. one worker draining a backlog -------------------------------------------------------------


@dataclass
class ThroughputResult:
    backend: str
    concurrency: int
    backlog: int
    delivered: int = 0  # conversations that got a call by the end of the drain (or the cap)
    called: int = 0  # conversations that got a call by the time the worker had exited
    doubles: int = 0
    bad: int = 0
    recorded: int = 0  # events 'delivered' in the database once the worker has stopped
    seconds: float = 0.0  # first call to last call
    worker_cpu: float | None = None  # CPU seconds of the worker over that span
    here_cpu: float = 0.0  # this process (the stand-in for Fin)
    others_percent: float | None = None
    exit_code: int | None = None
    stop_seconds: float = 0.0

    @property
    def drained(self) -> bool:
        return self.delivered == self.backlog

    @property
    def per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def worker_cpu_ms(self) -> float | None:
        if self.worker_cpu is None or not self.delivered:
            return None
        return 1000 * self.worker_cpu / self.delivered

    @property
    def projected_seconds(self) -> float | None:
        """How long the whole backlog takes at the measured rate."""
        return self.backlog / self.per_second if self.per_second else None

    @property
    def ok(self) -> bool:
        """Not having drained within the cap is no failure: the rate is the figure. Each call
        must be for a new conversation, and recorded as delivered (one event each)."""
        return (
            self.delivered > 0
            and self.doubles == 0
            and self.bad == 0
            and self.recorded == self.called
            and self.exit_code == 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "concurrency": self.concurrency,
            "backlog_events": self.backlog,
            "delivered_conversations": self.delivered,
            "called_until_exit": self.called,
            "drained": self.drained,
            "seconds_first_to_last_call": round(self.seconds, 3),
            "projected_drain_seconds": rounded(self.projected_seconds, 1),
            "deliveries_per_second": round(self.per_second, 1),
            "worker_cpu_ms_per_delivery": rounded(self.worker_cpu_ms, 3),
            "worker_cpu_percent_of_a_core": None
            if self.worker_cpu is None or not self.seconds
            else round(100 * self.worker_cpu / self.seconds, 1),
            "fake_fin_cpu_percent_of_a_core": round(100 * self.here_cpu / self.seconds, 1)
            if self.seconds
            else None,
            "other_processes_cpu_percent_of_machine": rounded(self.others_percent, 1),
            "double_deliveries": self.doubles,
            "malformed_calls": self.bad,
            "events_recorded_delivered": self.recorded,
            "worker_exit_code": self.exit_code,
            "worker_stop_seconds": round(self.stop_seconds, 2),
        }


def insert_backlog(db: Database, count: int, run: int) -> None:
    """``count`` pending events due now on ``count`` distinct conversations, in one transaction
    (SQLAlchemy core, bulk). The worker needs no conversation rows."""
    now = utcnow()
    rows = [
        {
            "conversation_id": f"{CONVERSATION_PREFIX}{run}_{n:07d}",
            "reason": "bench",
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for n in range(count)
    ]
    with db.engine.begin() as connection:
        connection.execute(insert(OutboxEvent.__table__), rows)


async def measure_throughput(
    options: Options, tmp: Path, fin: FakeFin, concurrency: int, run: int
) -> ThroughputResult:
    data_dir = tmp / f"worker-{run}"
    data_dir.mkdir()
    url = options.database_url or f"sqlite:///{data_dir / 'findesk.db'}"
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    result = ThroughputResult(backend, concurrency, options.backlog)
    upgrade(url)
    db = Database(url)
    try:
        with db.read_session() as session:
            if session.scalar(select(func.count()).select_from(OutboxEvent)):
                raise SetupError(f"{url}: the outbox is not empty")
        log(f"throughput: concurrency {concurrency}: inserting {options.backlog:,} events ...")
        insert_backlog(db, options.backlog, run)
        settings = {"notifier_concurrency": str(concurrency)}
        if options.database_url:
            settings["database_url"] = options.database_url
        worker = ChildProcess(
            "findesk worker",
            findesk_command("worker"),
            data_dir / "worker.log",
            env=webhook_env(data_dir, fin, **settings),
            cwd=data_dir,
        )
        fin.reset()
        fin.expect(options.backlog)
        cpu_at_first: list[CpuSnapshot] = []

        def first_call() -> None:
            cpu_at_first.append(CpuSnapshot.take(worker))

        fin.on_first_call[:] = [first_call]
        try:
            worker.start()
            log(f"throughput: concurrency {concurrency}: draining (at most {options.cap:g} s)")

            async def started() -> bool:
                return bool(fin.first_at)

            await worker.wait_for(started, "no call from the worker", STARTUP_TIMEOUT)
            first_at = min(fin.first_at.values())
            deadline = first_at + options.cap
            while not fin.reached.is_set() and time.perf_counter() < deadline:
                if not worker.alive():
                    raise SetupError(f"the worker exited; its log ends with:\n{worker.log_tail()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fin.reached.wait(), 0.5)
            cpu_at_last = CpuSnapshot.take(worker)
            result.delivered = len(fin.first_at)
            result.seconds = fin.last_at - first_at
            if cpu_at_first:
                cpu = cpu_at_first[0].until(cpu_at_last)
                result.worker_cpu, result.here_cpu = cpu.target, cpu.here
                result.others_percent = percent_of_machine(cpu.others, result.seconds)
        finally:
            result.exit_code, result.stop_seconds = await worker.stop_async(STOP_TIMEOUT)
        # Outcomes are recorded before the worker exits (it finishes the batch in flight).
        result.called, result.doubles, result.bad = len(fin.first_at), fin.doubles, fin.bad
        with db.read_session() as session:
            result.recorded = int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxEvent)
                    .where(OutboxEvent.state == "delivered")
                )
                or 0
            )
        if result.exit_code != 0:
            log(f"  the worker exited {result.exit_code}; log:\n{worker.log_tail()}")
    finally:
        if options.database_url:
            with db.transaction() as session:
                session.execute(
                    delete(OutboxEvent).where(
                        OutboxEvent.conversation_id.startswith(CONVERSATION_PREFIX)
                    )
                )
        db.dispose()
    return result


# --- report -------------------------------------------------------------------------------------


@dataclass
class Options:
    rate: float
    duration: float
    warmup: float
    backlog: int
    concurrency: list[int]
    cap: float
    database_url: str | None
    skip_latency: bool
    as_json: bool


@dataclass
class Report:
    options: Options
    latency: LatencyResult | None = None
    throughput: list[ThroughputResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.latency is None or self.latency.ok) and all(t.ok for t in self.throughput)

    @property
    def busiest_others(self) -> float | None:
        shares = [t.others_percent for t in self.throughput]
        if self.latency is not None and self.latency.cpu is not None:
            shares.append(self.latency.cpu.others_percent)
        return busiest(shares)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": {
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "note": "the stand-in for Fin, findesk and the database share the same CPU "
                "cores, with whatever else runs on the machine",
                "other_processes_max_cpu_percent_of_machine": rounded(self.busiest_others, 1),
            },
            "latency": None if self.latency is None else self.latency.to_json(),
            "throughput": [t.to_json() for t in self.throughput],
            "pass": self.ok,
        }


def print_table(report: Report) -> None:
    cores = os.cpu_count() or 0
    print(f"findesk notifier benchmark (Python {platform.python_version()}, {cores} cores)")
    print(
        f"Note: this process (the load generator and the stand-in for Fin), findesk and the\n"
        f"database share these {cores} cores; 'others' is the CPU used by processes outside\n"
        f"the benchmark (% of the machine).\n"
    )
    lat = report.latency
    if lat is not None:
        data = lat.to_json()
        print(
            f"1. Latency, commit to Fin: findesk serve (SQLite, in-process notifier), "
            f"{lat.rate:g} agent actions/s\n   for {lat.duration:g} s after {lat.warmup:g} s "
            f"warm-up, replies and tag PATCHes alternating, each on its own conversation"
        )
        header = f"   {'measured from':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        print(header)
        print("   " + "-" * (len(header) - 3))
        for key, label in (
            ("from_response_ms", "the action's HTTP response"),
            ("from_request_ms", "the action's request (upper bound)"),
            ("action_response_ms", "(the action itself: request->resp.)"),
        ):
            row = data[key]
            print(
                f"   {label:<34} {cell(row['p50'], '.1f'):>8} {cell(row['p99'], '.1f'):>8} "
                f"{cell(row.get('max'), '.1f'):>8}"
            )
        print(
            f"   {lat.actions} actions measured, {lat.errors} failed, {lat.undelivered} never "
            f"reached Fin; {data['from_response_ms']['negative']} calls arrived before the "
            f"response;\n   load generator at most {data['max_schedule_lag_ms']:.1f} ms late; "
            f"server CPU {cell(data['server_cpu_percent_of_a_core'], '.0f', '%')} of a core, "
            f"others {cell(data['other_processes_cpu_percent_of_machine'], '.0f', '%')}\n"
        )
    if report.throughput:
        print(
            f"2. Throughput of ONE findesk worker draining {report.options.backlog:,} events "
            f"on as many conversations\n   (time from the first call received to the last)"
        )
        header = (
            f"   {'backend':<10} {'conc.':>5} {'deliv./s':>9} {'seconds':>8} {'drained':>8} "
            f"{'all in':>7} {'CPU ms/deliv.':>13} {'worker':>7} {'fin':>5} {'others':>6}"
        )
        print(header)
        print("   " + "-" * (len(header) - 3))
        for t in report.throughput:
            data = t.to_json()
            drained = "yes" if t.drained else f"{t.delivered:,}"
            projected = cell(t.projected_seconds, ".0f", " s")
            print(
                f"   {t.backend:<10} {t.concurrency:>5} {t.per_second:>9.0f} {t.seconds:>8.1f} "
                f"{drained:>8} {projected:>7} {cell(t.worker_cpu_ms, '.2f'):>13} "
                f"{cell(data['worker_cpu_percent_of_a_core'], '.0f', '%'):>7} "
                f"{cell(data['fake_fin_cpu_percent_of_a_core'], '.0f', '%'):>5} "
                f"{cell(t.others_percent, '.0f', '%'):>6}"
            )
            problems = []
            if t.doubles:
                problems.append(f"{t.doubles} conversations delivered twice")
            if t.bad:
                problems.append(f"{t.bad} malformed calls")
            if t.recorded != t.called:
                problems.append(f"{t.called} called, {t.recorded} recorded delivered")
            if t.exit_code != 0:
                problems.append(f"worker exit code {t.exit_code}")
            if problems:
                print(f"   FAIL ({t.backend}, {t.concurrency}): " + "; ".join(problems))
        print(
            "   'drained': yes, or how many were delivered within the cap; 'all in': the whole\n"
            "   backlog at that rate; 'CPU ms/deliv.': the worker's; 'worker'/'fin': CPU of the\n"
            "   worker / of this process (the stand-in for Fin), % of a core"
        )
    print_busy_warning(report.busiest_others, prefix="\n")
    print(f"\n{'PASS' if report.ok else 'FAIL'}")


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50, help="agent actions per second (50)")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured (10)")
    parser.add_argument("--warmup", type=float, default=1, help="seconds of warm-up (1)")
    parser.add_argument(
        "--backlog", type=int, default=20_000, help="events for the worker to drain (20000)"
    )
    parser.add_argument(
        "--concurrency",
        default="8,32",
        help="worker concurrencies to measure, comma-separated (8,32; 8 is the default)",
    )
    parser.add_argument(
        "--cap", type=float, default=25, help="at most this long per drain, in seconds (25)"
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL database for the throughput part (its outbox must be empty)",
    )
    parser.add_argument("--skip-latency", action="store_true", help="only the throughput part")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency: comma-separated integers")
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.cap <= 0:
        parser.error("rate, duration and cap must be > 0, warmup >= 0")
    if args.backlog < 1 or any(not 1 <= c <= 256 for c in concurrency):
        parser.error("backlog must be >= 1 and each concurrency from 1 to 256")
    return Options(
        args.rate,
        args.duration,
        args.warmup,
        args.backlog,
        concurrency,
        args.cap,
        args.database_url,
        args.skip_latency,
        args.json,
    )


async def run_benchmark(options: Options, tmp: Path, report: Report) -> None:
    fin = FakeFin()
    await fin.start()
    try:
        if not options.skip_latency:
            report.latency = await measure_latency(options, tmp, fin)
        for run, concurrency in enumerate(options.concurrency):
            report.throughput.append(await measure_throughput(options, tmp, fin, concurrency, run))
    finally:
        await fin.stop()


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    report = Report(options)
    with bench_folder() as tmp:
        asyncio.run(run_benchmark(options, tmp, report))
    return finish(report.ok, options.as_json, report.to_json, lambda: print_table(report))


if __name__ == "__main__":
    run_main(main)
