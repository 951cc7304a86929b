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
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
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

WEBHOOK_PATH = "/hooks/standalone/custom_helpdesk_conversation_event/bench"
WEBHOOK_KEY = "bench-webhook-key"
STARTUP_TIMEOUT = 60.0
DELIVERY_TIMEOUT = 30.0  # for the last action's delivery, after the load
STOP_TIMEOUT = 15.0
BUSY_MACHINE_PERCENT = 10.0  # above this, other processes skew the figures: say so
CONVERSATION_PREFIX = "bench_"


class SetupError(Exception):
    """The benchmark could not be set up: a process did not start or answered wrongly."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


# --- child processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def findesk_env(data_dir: Path, fin: FakeFin, **settings: str) -> dict[str, str]:
    """A user's environment: the data folder and Fin's webhook, nothing else of findesk's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINDESK_")}
    env["FINDESK_DATA_DIR"] = str(data_dir)
    env["FINDESK_FIN_WEBHOOK_URL"] = fin.url
    env["FINDESK_FIN_WEBHOOK_KEY"] = WEBHOOK_KEY
    env.update({f"FINDESK_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass
class ChildProcess:
    """``findesk serve`` or ``findesk worker``, its output in a log file; stopped on ``stop()``."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as out:
            # Own session: Ctrl-C reaches only us, and our clean-up stops the child.
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.env["FINDESK_DATA_DIR"],
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process, all threads (Linux only)."""
        if self.process is None:
            return None
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> tuple[int | None, float]:
        """SIGTERM (both commands shut down gracefully on it: the deliveries in flight are
        finished first, so the stand-in for Fin, on this event loop, must go on answering);
        the exit code and how long the process took to exit. Killed after STOP_TIMEOUT."""
        process = self.process
        if process is None:
            return None, 0.0
        started = time.perf_counter()
        if process.poll() is None:
            process.terminate()
            try:
                while process.poll() is None:
                    if time.perf_counter() - started > STOP_TIMEOUT:
                        process.kill()
                        break
                    await asyncio.sleep(0.02)
            finally:  # also when cancelled (Ctrl-C): never leave the child behind
                if process.poll() is None:
                    process.kill()
                process.wait()
        return process.returncode, time.perf_counter() - started


async def wait_for(condition: Any, what: str, process: ChildProcess, timeout: float) -> None:
    """Poll ``condition()`` until true, failing fast if the process dies."""
    deadline = time.perf_counter() + timeout
    while not await condition():
        if not process.alive():
            raise SetupError(f"{process.name} exited; its log ends with:\n{process.log_tail()}")
        if time.perf_counter() > deadline:
            raise SetupError(f"{what} within {timeout:g} s; log:\n{process.log_tail()}")
        await asyncio.sleep(0.05)


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot, all cores (Linux only)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """CPU seconds over a measurement: the findesk process, this process, and every process
    outside the benchmark in percent of the machine (the database server counts as outside
    when it is PostgreSQL). None where /proc is not available."""

    findesk: float | None = None
    here: float = 0.0
    others_percent: float | None = None


@contextlib.contextmanager
def cpu_meter(process: ChildProcess) -> Iterator[CpuUse]:
    use = CpuUse()
    started, here, machine = time.perf_counter(), time.process_time(), machine_busy_seconds()
    child = process.cpu_seconds()
    yield use
    elapsed = time.perf_counter() - started
    child_after, machine_after = process.cpu_seconds(), machine_busy_seconds()
    use.here = time.process_time() - here
    if child is not None and child_after is not None:
        use.findesk = child_after - child
    if machine is not None and machine_after is not None and use.findesk is not None:
        others = max(0.0, machine_after - machine - use.findesk - use.here)
        use.others_percent = 100 * others / elapsed / (os.cpu_count() or 1) if elapsed else None


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
            if cpu is None or cpu.findesk is None or not self.elapsed
            else round(100 * cpu.findesk / self.elapsed, 1),
            "other_processes_cpu_percent_of_machine": None
            if cpu is None or cpu.others_percent is None
            else round(cpu.others_percent, 1),
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
        [sys.executable, "-m", "findesk", "serve", "--host", "127.0.0.1", "--port", str(port)],
        findesk_env(data_dir, fin),
        data_dir / "serve.log",
    )
    base_url = f"http://127.0.0.1:{port}"
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
        await wait_for(healthy, "findesk serve did not answer", server, STARTUP_TIMEOUT)
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
        code, _ = await server.stop()
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
            "projected_drain_seconds": None
            if self.projected_seconds is None
            else round(self.projected_seconds, 1),
            "deliveries_per_second": round(self.per_second, 1),
            "worker_cpu_ms_per_delivery": None
            if self.worker_cpu_ms is None
            else round(self.worker_cpu_ms, 3),
            "worker_cpu_percent_of_a_core": None
            if self.worker_cpu is None or not self.seconds
            else round(100 * self.worker_cpu / self.seconds, 1),
            "fake_fin_cpu_percent_of_a_core": round(100 * self.here_cpu / self.seconds, 1)
            if self.seconds
            else None,
            "other_processes_cpu_percent_of_machine": None
            if self.others_percent is None
            else round(self.others_percent, 1),
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
            [sys.executable, "-m", "findesk", "worker"],
            findesk_env(data_dir, fin, **settings),
            data_dir / "worker.log",
        )
        fin.reset()
        fin.expect(options.backlog)
        cpu_at_first: list[float | None] = []
        here_at_first: list[float] = []
        machine_at_first: list[float | None] = []

        def first_call() -> None:
            cpu_at_first.append(worker.cpu_seconds())
            here_at_first.append(time.process_time())
            machine_at_first.append(machine_busy_seconds())

        fin.on_first_call[:] = [first_call]
        try:
            worker.start()
            log(f"throughput: concurrency {concurrency}: draining (at most {options.cap:g} s)")

            async def started() -> bool:
                return bool(fin.first_at)

            await wait_for(started, "no call from the worker", worker, STARTUP_TIMEOUT)
            first_at = min(fin.first_at.values())
            deadline = first_at + options.cap
            while not fin.reached.is_set() and time.perf_counter() < deadline:
                if not worker.alive():
                    raise SetupError(f"the worker exited; its log ends with:\n{worker.log_tail()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fin.reached.wait(), 0.5)
            cpu_at_last, here_at_last = worker.cpu_seconds(), time.process_time()
            machine_at_last = machine_busy_seconds()
            result.delivered = len(fin.first_at)
            result.seconds = fin.last_at - first_at
            if cpu_at_first and cpu_at_first[0] is not None and cpu_at_last is not None:
                result.worker_cpu = cpu_at_last - cpu_at_first[0]
            if here_at_first:
                result.here_cpu = here_at_last - here_at_first[0]
            machine = machine_at_first[0] if machine_at_first else None
            if machine is not None and machine_at_last is not None and result.seconds:
                busy = machine_at_last - machine - (result.worker_cpu or 0.0) - result.here_cpu
                cores = os.cpu_count() or 1
                result.others_percent = 100 * max(0.0, busy) / result.seconds / cores
        finally:
            result.exit_code, result.stop_seconds = await worker.stop()
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


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q from 0 to 100); sorts ``values`` in place."""
    if not values:
        return math.nan
    values.sort()
    return values[max(1, math.ceil(q / 100 * len(values))) - 1]


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
        return max((s for s in shares if s is not None), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": {
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "note": "the stand-in for Fin, findesk and the database share the same CPU "
                "cores, with whatever else runs on the machine",
                "other_processes_max_cpu_percent_of_machine": None
                if self.busiest_others is None
                else round(self.busiest_others, 1),
            },
            "latency": None if self.latency is None else self.latency.to_json(),
            "throughput": [t.to_json() for t in self.throughput],
            "pass": self.ok,
        }


def _cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


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
                f"   {label:<34} {_cell(row['p50'], '.1f'):>8} {_cell(row['p99'], '.1f'):>8} "
                f"{_cell(row.get('max'), '.1f'):>8}"
            )
        print(
            f"   {lat.actions} actions measured, {lat.errors} failed, {lat.undelivered} never "
            f"reached Fin; {data['from_response_ms']['negative']} calls arrived before the "
            f"response;\n   load generator at most {data['max_schedule_lag_ms']:.1f} ms late; "
            f"server CPU {_cell(data['server_cpu_percent_of_a_core'], '.0f', '%')} of a core, "
            f"others {_cell(data['other_processes_cpu_percent_of_machine'], '.0f', '%')}\n"
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
            projected = _cell(t.projected_seconds, ".0f", " s")
            print(
                f"   {t.backend:<10} {t.concurrency:>5} {t.per_second:>9.0f} {t.seconds:>8.1f} "
                f"{drained:>8} {projected:>7} {_cell(t.worker_cpu_ms, '.2f'):>13} "
                f"{_cell(data['worker_cpu_percent_of_a_core'], '.0f', '%'):>7} "
                f"{_cell(data['fake_fin_cpu_percent_of_a_core'], '.0f', '%'):>5} "
                f"{_cell(t.others_percent, '.0f', '%'):>6}"
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
    busiest = report.busiest_others
    if busiest is not None and busiest > BUSY_MACHINE_PERCENT:
        print(
            f"\nWARNING: other processes used up to {busiest:.0f}% of the machine during the "
            f"run; the figures are skewed by them."
        )
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


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM stop the run as Ctrl-C does (asyncio.run cancels the benchmark, then
    KeyboardInterrupt unwinds the stack, so that the children and temporary files go away)."""

    def handler(_signum: int, _frame: object) -> None:
        signal.raise_signal(signal.SIGINT)

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


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
    with contextlib.ExitStack() as stack:
        stack.enter_context(sigterm_as_interrupt())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="findesk-bench-")))
        asyncio.run(run_benchmark(options, tmp.resolve(), report))
    if options.as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_table(report)
    if not report.ok:
        log("FAIL: see the report")
    return 0 if report.ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    # By the time these are caught, the child processes and the temporary files are gone.
    except SetupError as exc:
        log(f"error: {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
