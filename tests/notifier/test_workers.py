"""Several ``findesk worker`` processes sharing one outbox on PostgreSQL (spec 6, README "The
notifier"): no event is delivered by two workers, none is left behind, leases are respected, and
SIGTERM stops a worker gracefully.

Two real worker processes deliver to a stand-in for Fin in this process. Who delivered what is
read from each process's own log (one JSON line per delivery on stderr, with its delivery id):
the webhook call itself does not say which worker made it. Waits are bounded and wait on the
receiver's condition variable, on a log line or on database state, never a blind sleep.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, inspect, select
from support.postgres import PostgresServer
from support.receiver import WEBHOOK_KEY, Received, Receiver, eventually

from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.notifier.models import OutboxEvent

pytestmark = pytest.mark.postgres

PATH = "/hooks/standalone/custom_helpdesk_conversation_event/test-integration"
# The backlog: conversations by how many pending events each has (10,000 events in all).
BACKLOG = {1: 6_000, 2: 1_000, 4: 500}
DRAIN_DEADLINE = 120.0
DEADLINE = 60.0  # every other bounded wait
STOP_TIMEOUT = 15.0  # a stopped worker finishes its batch in flight, then exits
SEED = 20261120


# --- a fast stand-in for Fin that can also hold calls -------------------------------------------


class Listener(ThreadingHTTPServer):
    # The default backlog (5) overflows when two workers open their concurrent calls at once:
    # Linux then drops the SYN and the connect is retried only after a second.
    request_queue_size = 256
    daemon_threads = True


class FastFin(Receiver):
    """``Receiver`` made fast enough for 10,000 events: HTTP/1.1 keep-alive (one connection per
    concurrent call of a worker instead of one per call) and each answer in one write (no Nagle
    delay between the headers and the body).

    Calls for conversations in ``held`` are recorded when they arrive, then not answered until
    ``release()``: the worker that made such a call is stuck in it, its lease running.
    """

    def __init__(self) -> None:
        super().__init__()
        self.held: set[str] = set()
        self._gate = threading.Event()

    def hold(self, conversation_id: str) -> None:
        self.held.add(conversation_id)

    def release(self) -> None:
        self._gate.set()

    def accept(self) -> FastFin:
        fin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 64 * 1024  # flushed once per request, after the body

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                hit = Received(self.path, dict(self.headers.items()), body, time.monotonic())
                with fin._cond:
                    fin.received.append(hit)
                    fin._cond.notify_all()
                if hit.conversation_id in fin.held:
                    fin._gate.wait(DEADLINE)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        server = Listener(("127.0.0.1", self.port), Handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.release()
        super().close()


# --- worker processes ---------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """``findesk worker`` in a child process; its log (stderr, JSON lines) goes to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return entries

    def logged(self, message: str) -> bool:
        return f'"msg": "{message}"' in self.log_path.read_text(errors="replace")

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Its successful deliveries, by delivery id."""
        return {e["delivery_id"]: e for e in self.log() if e["msg"] == "delivery delivered"}

    def worker_ids(self) -> set[str]:
        return {e["worker"] for e in self.log() if "worker" in e}

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> float:
        """SIGTERM; returns how long it took to exit (it must exit 0)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_TIMEOUT)
        assert code == 0, f"worker {self.pid} exited {code}:\n{self.tail()}"
        return time.monotonic() - started


Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``findesk worker`` processes; any still running at the end are killed."""
    started: list[WorkerProcess] = []

    def start(database_url: str, fin: Receiver, **settings: object) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
        env |= {
            "FINDESK_DATA_DIR": str(tmp_path / "data"),
            "FINDESK_DATABASE_URL": database_url,
            "FINDESK_FIN_WEBHOOK_URL": fin.hook_url(),
            "FINDESK_FIN_WEBHOOK_KEY": WEBHOOK_KEY,
            "FINDESK_NOTIFIER_POLL_SECONDS": "0.2",
        }
        env |= {f"FINDESK_{key.upper()}": str(value) for key, value in settings.items()}
        log_path = tmp_path / f"worker-{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "findesk", "worker"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        worker = WorkerProcess(process, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def wait_started(*workers: WorkerProcess) -> None:
    for worker in workers:
        assert eventually(
            lambda w=worker: w.logged("worker started") or w.process.poll() is not None,
            timeout=DEADLINE,
        ), f"worker {worker.pid} did not start:\n{worker.tail()}"
        assert worker.process.poll() is None, f"worker {worker.pid} died:\n{worker.tail()}"


@pytest.fixture
def database(pg_server: PostgresServer) -> Iterator[tuple[str, Database]]:
    url = pg_server.create_database(f"findesk_workers_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    db = Database(url)
    yield url, db
    db.dispose()


def insert_events(db: Database, conversation_ids: list[str]) -> datetime:
    """One pending event per item, all due now, in one transaction (SQLAlchemy core, bulk)."""
    now = utcnow()
    rows = [
        {
            "conversation_id": conversation_id,
            "reason": "bench",
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for conversation_id in conversation_ids
    ]
    with db.transaction() as session:  # a writer's BEGIN IMMEDIATE, queued with the server's
        session.execute(insert(OutboxEvent.__table__), rows)
    return now


def count_where(db: Database, *conditions: Any) -> int:
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).where(*conditions)) or 0)


def pid_of(worker_id: str) -> int:
    """Worker ids are ``host:pid:random``."""
    return int(worker_id.split(":")[-2])


# --- the tests ----------------------------------------------------------------------------------


def test_two_workers_drain_a_backlog_without_double_delivery(
    database: tuple[str, Database], spawn: Spawn
) -> None:
    url, db = database
    # The worker needs no conversation rows: the outbox refers to conversations by id only.
    assert inspect(db.engine).get_foreign_keys("outbox_events") == []

    expected = {}  # conversation id -> its events
    for per_conversation, conversations in BACKLOG.items():
        for _ in range(conversations):
            expected[f"conv_{len(expected):06d}"] = per_conversation
    events = [c for c, n in expected.items() for _ in range(n)]
    random.Random(SEED).shuffle(events)  # a conversation's events far apart in id order
    assert len(events) == 10_000

    fin = FastFin().accept()
    try:
        workers = [spawn(url, fin), spawn(url, fin)]
        wait_started(*workers)
        # All of a conversation's events become visible at once, in one commit, while both
        # workers poll: each conversation must be delivered exactly once.
        insert_events(db, events)
        started = time.monotonic()
        drained = fin.wait_until(lambda got: len(got) >= len(expected), DRAIN_DEADLINE)
        elapsed = (fin.snapshot()[-1].at if fin.received else time.monotonic()) - started
        assert drained, (
            f"{len(fin.received)} of {len(expected)} conversations delivered in "
            f"{DRAIN_DEADLINE:.0f} s\n" + "\n".join(w.tail(5) for w in workers)
        )
        # Outcomes are recorded after the answers: wait for the last round's.
        assert eventually(
            lambda: count_where(db, OutboxEvent.state != "delivered") == 0, timeout=DEADLINE
        ), "events left behind"
        stop_seconds = [worker.stop() for worker in workers]
    finally:
        fin.close()

    received = fin.snapshot()  # final: both workers have exited
    per_conversation = collections.Counter(r.conversation_id for r in received)
    doubles = {c: n for c, n in per_conversation.items() if n > 1}
    assert not doubles, f"{len(doubles)} conversations delivered more than once"
    assert set(per_conversation) == set(expected)
    for hit in received:
        assert hit.path == PATH
        assert hit.headers["X-Webhook-Key"] == WEBHOOK_KEY
        assert hit.headers["X-Findesk-Attempt"] == "1"
        assert hit.body == {"conversation_id": hit.conversation_id}
    header_ids = {r.conversation_id: r.headers["X-Findesk-Delivery"] for r in received}
    assert len(set(header_ids.values())) == len(received)

    # Every event delivered, unleased, under its conversation's one delivery id.
    with db.read_session() as session:
        rows = session.execute(
            select(
                OutboxEvent.conversation_id,
                OutboxEvent.state,
                OutboxEvent.lease_owner,
                OutboxEvent.delivery_id,
            )
        ).all()
    assert len(rows) == len(events)
    assert {(state, owner) for _, state, owner, _ in rows} == {("delivered", None)}
    assert all(delivery_id == header_ids[c] for c, _, _, delivery_id in rows)

    # Who delivered what: each worker's log accounts for its own calls, and only those.
    logs = [worker.delivered() for worker in workers]
    assert all(logs), f"a worker delivered nothing: {[len(log) for log in logs]}"
    assert not set(logs[0]) & set(logs[1]), "a delivery logged by both workers"
    assert set(logs[0]) | set(logs[1]) == set(header_ids.values())
    for worker, log in zip(workers, logs, strict=True):
        assert {pid_of(w) for w in worker.worker_ids()} == {worker.pid}
        assert all(entry["events"] == expected[entry["conversation_id"]] for entry in log.values())
        assert not [e for e in worker.log() if e["level"] not in ("info", "debug")]
        assert worker.logged("worker stopped")
    assert sum(e["events"] for log in logs for e in log.values()) == len(events)

    print(
        f"\n2 workers drained {len(events):,} events ({len(received):,} deliveries) in "
        f"{elapsed:.1f} s: {len(received) / elapsed:,.0f} deliveries/s, "
        f"{len(events) / elapsed:,.0f} events/s; split {len(logs[0]):,} / {len(logs[1]):,}; "
        f"stopped in {max(stop_seconds):.2f} s"
    )


def test_a_lease_held_by_one_worker_is_respected_by_the_other(
    database: tuple[str, Database], spawn: Spawn
) -> None:
    url, db = database
    fin = FastFin().accept()
    held = "conv_held"
    fin.hold(held)
    # Calls outlast the hold, so the lease is still the holder's throughout.
    slow = {"notifier_timeout_seconds": 90, "notifier_lease_seconds": 120}
    try:
        workers = [spawn(url, fin, **slow), spawn(url, fin, **slow)]
        wait_started(*workers)
        insert_events(db, [held] * 3)
        assert fin.wait_until(lambda got: any(r.conversation_id == held for r in got), DEADLINE)
        with db.read_session() as session:
            owners = set(
                session.scalars(
                    select(OutboxEvent.lease_owner).where(OutboxEvent.conversation_id == held)
                )
            )
        assert len(owners) == 1 and None not in owners, owners
        holder_pid = pid_of(owners.pop())
        holder = next(w for w in workers if w.pid == holder_pid)
        other = next(w for w in workers if w.pid != holder_pid)

        # While the holder is stuck in its call, the other worker works on: it delivers every
        # later change, and never the held events, though they are pending and due.
        barrier = [f"conv_after_{n:03d}" for n in range(50)]
        insert_events(db, barrier)
        assert fin.wait_until(
            lambda got: set(barrier) <= {r.conversation_id for r in got}, DEADLINE
        ), "the other worker did not deliver the later changes"
        # The log line follows the recorded outcome, which follows the answer.
        assert eventually(
            lambda: set(barrier) <= {e["conversation_id"] for e in other.delivered().values()},
            timeout=DEADLINE,
        ), "the later changes were not all delivered by the other worker"
        assert len(fin.for_conversation(held)) == 1
        assert count_where(db, OutboxEvent.conversation_id == held, OutboxEvent.state == "pending")
        assert held not in {e["conversation_id"] for e in other.delivered().values()}

        # SIGTERM during the call: the holder finishes its batch, records it, and exits 0.
        holder.process.send_signal(signal.SIGTERM)
        fin.release()
        assert holder.process.wait(timeout=STOP_TIMEOUT) == 0, holder.tail()
        assert count_where(db, OutboxEvent.state != "delivered") == 0
        assert held in {e["conversation_id"] for e in holder.delivered().values()}
        other.stop()
    finally:
        fin.close()
    assert len(fin.for_conversation(held)) == 1
    assert holder.logged("worker stopped") and other.logged("worker stopped")
