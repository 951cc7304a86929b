"""The crash test: nothing Fin must hear about is lost when ``findesk serve`` is SIGKILLed.

Four agents act on 30 conversations through the agent API of a real ``findesk serve`` process
(its in-process notifier delivering to a stand-in for Fin in this process) while its whole
process group is killed with SIGKILL four times - at 25, 60 and 95 % of the load and once right
after it, each kill aimed at a moment when webhook calls are in flight - and restarted on the
same database. Afterwards every conversation that changed must have been notified after its
last change. Run on SQLite and on PostgreSQL.

What "notified after its last change" means, and why the check is sound
------------------------------------------------------------------------

The test sees findesk only from outside, so it holds it to what spec 6 asks: Fin is told
``{conversation_id}`` and then *pulls*; a lost notification leaves Fin with a stale conversation.

* The stand-in Fin (``PullingFin``) pulls as soon as a call arrives: before answering, it reads
  the conversation straight from the database (the server may be dead by then) and keeps that
  *state* with the call. A read that starts after a commit sees it (PostgreSQL read committed,
  SQLite WAL), and every change findesk makes to a conversation alters its state: each one
  stamps ``updated_at`` (changes of one conversation are serialised by its row lock, or SQLite's
  single writer) and messages only grow. So "some call pulled a state equal to the final one"
  means "the conversation's last change had committed when Fin was told, and Fin saw it".
  Nothing about timing is assumed, so no race can fail it. (The obvious alternative, "a call
  received after the 2xx of the last action", is flaky: the worker, woken on commit, may
  legitimately deliver before the agent has read its response.)
* A call counts only if its sender was still there for the answer: Fin takes ``LATENCY`` to
  answer, and a call whose sender hung up meanwhile (killed, or gave up on its timeout) is not
  answered, not counted, and kept in ``aborted``. That only removes evidence, so it cannot make
  a lost event look delivered; it is the case the lease exists for: findesk never saw a 2xx, so
  the killed process's claim must run out and the call be made again.
* The final states are read from the database once every agent is done, so they are fixed; a
  conversation "changed" when its final state differs from the one it was created with (by Fin,
  whose own changes are never echoed, so no event is pending at the start).

A call that arrived while the last change was committing can pass the check for it without
covering its event (Fin saw the state anyway); that event must still go out: the outbox has to
drain (nothing pending or dead), and for every call a kill aborted, the events it carried must be
delivered and a later call for its conversation answered.

Actions whose HTTP call failed because the server was down or went down count as not made and
are not retried (a retry would add a fresh change and event, hiding a change that committed
without one). Whether such an action's change committed or not, the final state says what Fin
must see. Any answer other than 2xx fails the test.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.receiver import WEBHOOK_KEY, Received, Receiver, eventually
from support.server import database_url, free_port

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.auth.service import create_agent_token
from findesk.conversations.models import Conversation, ConversationTag, Message
from findesk.conversations.service import Author, NewMessage, open_conversation
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.notifier import repository as outbox
from findesk.notifier.models import OutboxEvent
from findesk.users.service import create_user

CONVERSATIONS = 30
AGENTS = 4
ACTIONS_PER_AGENT = 60
KILL_AT = (0.25, 0.6, 0.95)  # fractions of the load; one more kill follows it
LATENCY = 0.1  # how long the stand-in Fin takes to answer a webhook call
LEASE_SECONDS = 2.0
DEADLINE = 60.0  # every bounded wait
SEED = 20240611

State = tuple[Any, ...]


def conversation_state(db: Database, conversation_id: str) -> State:
    """What Fin sees when it pulls the conversation; every change findesk makes alters it."""
    with db.read_session() as session:
        row = session.execute(
            select(
                Conversation.updated_at,
                Conversation.status,
                Conversation.title,
                Conversation.attributes,
                Conversation.assignee_id,
                select(func.count())
                .select_from(Message)
                .where(Message.conversation_id == conversation_id)
                .scalar_subquery(),
            ).where(Conversation.id == conversation_id)
        ).one()
        tags = session.scalars(
            select(ConversationTag.tag)
            .where(ConversationTag.conversation_id == conversation_id)
            .order_by(ConversationTag.position)
        ).all()
    updated_at, status, title, attributes, assignee_id, messages = row
    return (
        updated_at,
        messages,
        status,
        title,
        json.dumps(attributes, sort_keys=True),
        assignee_id,
        tuple(tags),
    )


@dataclass(frozen=True)
class Pulled(Received):
    state: State = ()  # the conversation as Fin pulled it when the call arrived


def sender_gone(connection: socket.socket) -> bool:
    """True when the caller closed its end (a SIGKILLed process's sockets are closed)."""
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # still connected, waiting for our answer
    except OSError:
        return True


class Listener(ThreadingHTTPServer):
    # The default backlog (5) overflows when the worker opens its concurrent calls at once on
    # a busy machine: Linux then drops the SYN and the connect is retried only after a second.
    request_queue_size = 128


class PullingFin(Receiver):
    """Fin's webhook as spec 6 describes it: told a conversation id, Fin pulls the conversation.

    ``received`` holds the calls answered with 200 to a live sender, each with the state
    pulled on arrival; ``aborted`` the calls whose sender hung up before the answer.
    """

    def __init__(self, db: Database, latency: float) -> None:
        super().__init__()
        self.db = db
        self.latency = latency
        self.in_flight = 0
        self.aborted: list[Pulled] = []

    def accept(self) -> PullingFin:
        fin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fin._cond:
                    fin.in_flight += 1
                    fin._cond.notify_all()
                try:
                    at = time.monotonic()
                    state = conversation_state(fin.db, str(body.get("conversation_id")))
                    hit = Pulled(self.path, dict(self.headers.items()), body, at, state)
                    time.sleep(fin.latency)  # Fin's own processing time, not a wait for us
                    if sender_gone(self.connection):
                        with fin._cond:
                            fin.aborted.append(hit)
                            fin._cond.notify_all()
                        self.close_connection = True
                        return
                    with fin._cond:
                        fin.received.append(hit)
                        fin._cond.notify_all()
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                finally:
                    with fin._cond:
                        fin.in_flight -= 1
                        fin._cond.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        server = Listener(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def wait_in_flight(self, timeout: float) -> int:
        """Wait until a call is being answered; how many are (0 on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.in_flight == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self.in_flight

    def pulled(self) -> list[Pulled]:
        with self._cond:
            return [hit for hit in self.received if isinstance(hit, Pulled)]


class ServeProcess:
    """``findesk serve`` in its own process group, killed as a whole with SIGKILL."""

    def __init__(self, env: dict[str, str], port: int, logs: Path) -> None:
        self.env, self.port, self.logs = env, port, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.up = threading.Event()  # set while the server answers

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start and wait until ready; returns the monotonic time it was."""
        self.starts += 1
        log = (self.logs / f"serve-{self.starts}.log").open("wb")
        port = str(self.port)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "findesk", "serve", "--host", "127.0.0.1", "--port", port],
            env=self.env,
            cwd=self.logs,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg takes everything
        )
        log.close()
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"findesk serve exited ({proc.returncode}):\n{self.tail()}")
            try:
                return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        assert eventually(ready, timeout=DEADLINE), f"serve not ready:\n{self.tail()}"
        self.up.set()
        return time.monotonic()

    def kill(self) -> None:
        self.up.clear()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=DEADLINE)

    def wait_up(self) -> None:
        """Wait until the server is back after a kill; fail if it died without one."""
        assert self.up.wait(DEADLINE), "the server did not come back"
        proc = self.proc
        if proc is not None and proc.poll() is not None and self.up.is_set() and proc is self.proc:
            raise AssertionError(
                f"findesk serve exited by itself ({proc.returncode}):\n{self.tail()}"
            )

    def tail(self, lines: int = 40) -> str:
        log = self.logs / f"serve-{self.starts}.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def serve_env(url: str, fin: Receiver, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env.update(
        {
            "FINDESK_DATABASE_URL": url,
            "FINDESK_DATA_DIR": str(data_dir),
            "FINDESK_FIN_WEBHOOK_URL": fin.hook_url(),
            "FINDESK_FIN_WEBHOOK_KEY": WEBHOOK_KEY,
            "FINDESK_NOTIFIER_POLL_SECONDS": "0.2",
            "FINDESK_NOTIFIER_LEASE_SECONDS": str(LEASE_SECONDS),
            "FINDESK_NOTIFIER_BACKOFF_BASE_SECONDS": "0.05",
            "FINDESK_NOTIFIER_BACKOFF_MAX_SECONDS": "0.5",
            "FINDESK_NOTIFIER_TIMEOUT_SECONDS": "1",  # under the lease, as required
        }
    )
    return env


def seed(db: Database) -> tuple[list[str], list[str]]:
    """Agents' personal tokens, and conversations Fin started (so nothing is pending yet)."""
    with db.transaction() as session:
        fin_id = ensure_fin_agent(session, "fin@findesk.invalid").id
        tokens = []
        for n in range(AGENTS):
            agent = create_agent(
                session, email=f"crash-{n}-{uuid.uuid4().hex[:6]}@example.com", name=f"Agent {n}"
            )
            tokens.append(create_agent_token(session, agent))
        user, _ = create_user(session, object_id=f"u-{uuid.uuid4().hex}", name="Jane Doe")
        conversation_ids = []
        for n in range(CONVERSATIONS):
            conversation, _, _ = open_conversation(
                session,
                user_id=user.id,
                first=NewMessage(author=Author("end_user", user.id), body=f"<p>help {n}</p>"),
                actor=FIN,
                assignee_id=fin_id,
            )
            conversation_ids.append(conversation.id)
    return tokens, conversation_ids


def action(rng: random.Random, n: int) -> tuple[str, str, Any]:
    """(method, path suffix, json) of one agent action; n makes its content unique."""
    kind = rng.choices(
        ["reply", "note", "title", "tags", "attributes", "status", "take-over"],
        weights=[3, 2, 2, 2, 2, 1, 1],
    )[0]
    if kind == "reply":
        return "POST", "/messages", {"body": f"<p>reply {n}</p>"}
    if kind == "note":
        return "POST", "/messages", {"body": f"<p>note {n}</p>", "visibility": "private"}
    if kind == "title":
        return "PATCH", "", {"title": f"title {n}"}
    if kind == "tags":
        return "PATCH", "", {"tags": ["crash", f"t{n}"]}
    if kind == "attributes":
        return "PATCH", "", {"attributes": {"step": n}}
    if kind == "status":
        return "PATCH", "", {"status": rng.choice(["open", "resolved", "closed"])}
    return "POST", "/take-over", None


@dataclass
class Load:
    total: int
    done: int = 0  # actions attempted
    failed: int = 0  # of which the call failed: the server was down or went down
    errors: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_done(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.done >= count or bool(self.errors), timeout)


def agent_loop(
    serve: ServeProcess, token: str, conversations: list[str], rng: random.Random, load: Load
) -> None:
    try:
        with httpx.Client(
            base_url=f"{serve.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ) as client:
            for _ in range(ACTIONS_PER_AGENT):
                method, suffix, payload = action(rng, rng.randrange(10**9))
                path = f"/conversations/{rng.choice(conversations)}{suffix}"
                try:
                    response = client.request(method, path, json=payload)
                except httpx.TransportError:  # killed: the action counts as not made
                    with load.cond:
                        load.done += 1
                        load.failed += 1
                        load.cond.notify_all()
                    serve.wait_up()
                    continue
                assert response.is_success, f"{method} {path}: {response.status_code}"
                with load.cond:
                    load.done += 1
                    load.cond.notify_all()
    except BaseException as exc:  # reported to the test's thread through load.errors
        with load.cond:
            load.errors.append(f"{type(exc).__name__}: {exc}")
            load.cond.notify_all()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_is_lost_when_serve_is_killed(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    started = time.monotonic()
    url = database_url(backend, request, tmp_path)
    upgrade(url)
    db = Database(url)
    fin = PullingFin(db, LATENCY).accept()
    serve = ServeProcess(serve_env(url, fin, tmp_path), free_port(), tmp_path)
    try:
        tokens, conversations = seed(db)
        initial = {cid: conversation_state(db, cid) for cid in conversations}
        serve.start()

        load = Load(total=AGENTS * ACTIONS_PER_AGENT)
        agents = [
            threading.Thread(
                target=agent_loop,
                args=(serve, token, conversations, random.Random(SEED + n), load),
                daemon=True,
            )
            for n, token in enumerate(tokens)
        ]
        load_started = time.monotonic()
        for thread in agents:
            thread.start()

        in_flight_at_kills: list[int] = []
        for fraction in KILL_AT:
            assert load.wait_done(int(load.total * fraction), DEADLINE), "the load stalled"
            assert not load.errors, load.errors
            in_flight_at_kills.append(fin.wait_in_flight(5))
            serve.kill()
            serve.start()
        for thread in agents:
            thread.join(DEADLINE)
            assert not thread.is_alive(), "an agent never finished"
        load_seconds = time.monotonic() - load_started
        assert not load.errors, load.errors
        assert load.done == load.total
        assert load.failed < load.total / 4, "most actions should be made"

        # Every agent is done: the final states are fixed from here on. Kill once more while
        # the last changes are being delivered.
        final = {cid: conversation_state(db, cid) for cid in conversations}
        changed = [cid for cid in conversations if final[cid] != initial[cid]]
        in_flight_at_kills.append(fin.wait_in_flight(5))
        killed = time.monotonic()
        serve.kill()
        restarted = serve.start()

        def synced(hits: list[Received]) -> bool:
            seen = {(h.conversation_id, h.state) for h in hits if isinstance(h, Pulled)}
            return all((cid, final[cid]) in seen for cid in changed)

        def drained() -> bool:
            with db.read_session() as session:
                counts = outbox.counts_by_state(session)
            return not counts.get(outbox.PENDING) and not counts.get(outbox.DEAD)

        # Every event marked delivered was answered before it was marked (the answer is the
        # 2xx findesk waits for), so once the outbox has drained every call Fin will get is in.
        drained_in_time = eventually(drained, timeout=DEADLINE)
        fin.wait_until(synced, timeout=5)
        drain_seconds = time.monotonic() - restarted
        hits = fin.pulled()
        with fin._cond:
            aborted = list(fin.aborted)
        with db.read_session() as session:
            counts = outbox.counts_by_state(session)
        answered = Counter(h.headers["X-Findesk-Delivery"] for h in hits)
        print(
            f"\n[{backend}] actions={load.total} load={load_seconds:.1f}s "
            f"failed_by_kills={load.failed} kills={len(in_flight_at_kills)} "
            f"in_flight_at_kills={in_flight_at_kills} conversations={CONVERSATIONS} "
            f"changed={len(changed)} outbox={counts} calls_answered={len(hits)} "
            f"calls_aborted={len(aborted)} "
            f"delivery_ids_answered_twice={sum(1 for c in answered.values() if c > 1)} "
            f"last_restart={restarted - killed:.2f}s drain_after_it={drain_seconds:.2f}s "
            f"total={time.monotonic() - started:.1f}s"
        )

        not_notified = [
            cid
            for cid in changed
            if not any(h.conversation_id == cid and h.state == final[cid] for h in hits)
        ]
        assert not not_notified, (
            f"{len(not_notified)} of {len(changed)} changed conversations were never notified "
            f"after their last change: {not_notified}"
        )
        assert drained_in_time, f"the outbox did not drain: {counts}"
        # Every call a kill aborted was made again later and answered: its events (recorded
        # under its delivery id) are delivered, and a later call for the conversation was
        # answered. (It may carry another delivery id: when two aborted deliveries of one
        # conversation are retried together, the call carries the older one's id.)
        for call in aborted:
            delivery = call.headers["X-Findesk-Delivery"]
            with db.read_session() as session:
                states = set(
                    session.scalars(
                        select(OutboxEvent.state).where(OutboxEvent.delivery_id == delivery)
                    )
                )
            assert states == {outbox.DELIVERED}, f"aborted call {delivery}: events {states}"
            assert any(
                h.conversation_id == call.conversation_id and h.at > call.at for h in hits
            ), f"aborted call {delivery} ({call.conversation_id}) was never made again"
        assert sum(in_flight_at_kills) > 0, "no kill hit a webhook call in flight"
    finally:
        serve.kill()
        fin.close()
        db.dispose()
