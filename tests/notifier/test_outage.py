"""The notifier when Fin fails (spec 6): outages, rate limits, permanent errors, the retry window,
no webhook configured, and the ``findesk outbox`` commands that operate it.

Every fixture here is this module's own (its own receivers and live servers), so nothing here
disturbs test_delivery.py. Waits are bounded and wait on the receiver's condition variable or on
``eventually`` (database state), never a blind sleep. Back-off is kept small through settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support import aio
from support.receiver import WEBHOOK_KEY, Attempt, Receiver, eventually, notifier_settings
from support.server import LiveServer, database_url

from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import as_utc
from findesk.migrations import upgrade
from findesk.notifier.models import OutboxEvent
from findesk.notifier.worker import Worker

# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def live_server(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    settings: dict[str, object],
) -> LiveServer:
    url = database_url(backend, request, tmp_path_factory.mktemp("db"))
    return LiveServer(url, settings).start()


@pytest.fixture(scope="module")
def outage_fin() -> Iterator[Receiver]:
    fake_fin = Receiver().accept()
    yield fake_fin
    fake_fin.close()


@pytest.fixture(scope="module")
def outage_server(backend, request, tmp_path_factory, outage_fin) -> Iterator[LiveServer]:
    # Without CSAT's rating request (one more change when an agent resolves): the counts below
    # are exactly the agents' changes.
    settings = notifier_settings(outage_fin, csat_enabled=False)
    live = live_server(backend, request, tmp_path_factory, settings)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def dead_fin() -> Iterator[Receiver]:
    fake_fin = Receiver().accept()
    yield fake_fin
    fake_fin.close()


@pytest.fixture(scope="module")
def dead_server(backend, request, tmp_path_factory, dead_fin) -> Iterator[LiveServer]:
    """Its own database, so the CLI's counts are exactly this test's events."""
    live = live_server(backend, request, tmp_path_factory, notifier_settings(dead_fin))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def window_fin() -> Iterator[Receiver]:
    fake_fin = Receiver().accept()
    yield fake_fin
    fake_fin.close()


RETRY_WINDOW = 1.0


@pytest.fixture(scope="module")
def window_server(backend, request, tmp_path_factory, window_fin) -> Iterator[LiveServer]:
    settings = notifier_settings(window_fin, notifier_retry_window_seconds=RETRY_WINDOW)
    live = live_server(backend, request, tmp_path_factory, settings)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def idle_server(backend, request, tmp_path_factory) -> Iterator[LiveServer]:
    """No webhook configured (explicitly, whatever the environment says)."""
    settings = {"fin_webhook_url": None, "fin_integration_id": None, "notifier_poll_seconds": 0.2}
    live = live_server(backend, request, tmp_path_factory, settings)
    yield live
    live.stop()


def new_agent(server: LiveServer) -> httpx.Client:
    return server.agent_http(f"agent-{uuid.uuid4().hex[:6]}@example.com", "Otto Outage")


# --- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    conversation_id: str
    reason: str
    state: str
    attempts: int
    created_at: Any
    first_failed_at: Any
    delivery_id: str | None
    last_error: str | None
    lease_owner: str | None


def outbox_rows(server: LiveServer, conversation_ids: list[str] | None = None) -> list[Row]:
    query = select(OutboxEvent).order_by(OutboxEvent.id)
    if conversation_ids is not None:
        query = query.where(OutboxEvent.conversation_id.in_(conversation_ids))
    with server.db.read_session() as session:
        return [
            Row(
                e.id,
                e.conversation_id,
                e.reason,
                e.state,
                e.attempts,
                as_utc(e.created_at),
                as_utc(e.first_failed_at) if e.first_failed_at else None,
                e.delivery_id,
                e.last_error,
                e.lease_owner,
            )
            for e in session.scalars(query)
        ]


def states(server: LiveServer, conversation_ids: list[str]) -> set[str]:
    return {r.state for r in outbox_rows(server, conversation_ids)}


def change(agent: httpx.Client, conversation_id: str, n: int) -> None:
    """One agent change Fin must hear about (a different kind each time)."""
    kind = n % 4
    if kind == 0:
        response = agent.patch(f"/conversations/{conversation_id}", json={"title": f"t{n}"})
    elif kind == 1:
        response = agent.post(
            f"/conversations/{conversation_id}/messages", json={"body": f"<p>reply {n}</p>"}
        )
    elif kind == 2:
        response = agent.patch(f"/conversations/{conversation_id}", json={"tags": [f"tag{n}"]})
    else:
        status = "resolved" if n % 8 == 3 else "open"
        response = agent.patch(f"/conversations/{conversation_id}", json={"status": status})
    assert response.is_success, response.text


def findesk_outbox(server: LiveServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, on the server's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env["FINDESK_DATABASE_URL"] = server.database_url
    env["COLUMNS"] = "200"  # keep rich from wrapping messages
    return subprocess.run(
        [sys.executable, "-m", "findesk", "outbox", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def findesk_json(server: LiveServer, cwd: Path, *args: str) -> dict[str, Any]:
    result = findesk_outbox(server, cwd, *args, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # exactly one JSON document
    assert isinstance(data, dict), data
    return data


# --- 1. an outage ----------------------------------------------------------------------------

N_CONVERSATIONS, N_CHANGES, N_AGENTS = 20, 10, 4


def test_an_outage_loses_nothing_and_coalesces(outage_server, outage_fin) -> None:
    server, fin = outage_server, outage_fin
    world = server.fin_world()
    agents = [new_agent(server) for _ in range(N_AGENTS)]
    cids = [str(world.conversation()[0]["id"]) for _ in range(N_CONVERSATIONS)]

    def changes(rounds: range) -> None:
        """Every conversation changes once per round; the agents work in parallel."""

        def work(i: int) -> None:
            for n in rounds:
                for cid in cids[i::N_AGENTS]:
                    change(agents[i], cid, n)

        with ThreadPoolExecutor(N_AGENTS) as pool:
            list(pool.map(work, range(N_AGENTS)))

    def failed_503(since: int, retry_after: bool) -> Callable[[list[Attempt]], bool]:
        return lambda log: any(
            a.status == 503
            and a.conversation_id in cids
            and ("Retry-After" in a.answered_headers) == retry_after
            for a in log[since:]
        )

    try:
        # Phase 1: Fin answers 503 without Retry-After, until every conversation was refused once.
        fin.respond(503)
        changes(range(0, 4))
        assert fin.wait_for(
            lambda log: {a.conversation_id for a in log if a.status == 503} >= set(cids)
        ), "not every conversation was attempted during the 503s"

        # Phase 2: 503 with Retry-After.
        mark = len(fin.log)
        fin.respond(503, {"Retry-After": "1"})
        changes(range(4, 7))
        assert fin.wait_for(failed_503(mark, retry_after=True))

        # Phase 3: connections refused; the worker records network errors and keeps retrying.
        fin.refuse()
        changes(range(7, N_CHANGES))
        # Every event was tried since: none is younger than the batch a retry in flight carries
        # (on a slow machine, one leased before the last changes could land once Fin is back,
        # and the younger events then went in a second call).
        assert eventually(
            lambda: all(
                (r.last_error or "").startswith("network") for r in outbox_rows(server, cids)
            ),
            timeout=30,
        ), [r for r in outbox_rows(server, cids) if not (r.last_error or "").startswith("network")]
        assert "dead" not in states(server, cids)  # a refused connection is worth a retry
        assert not any(r.conversation_id in cids for r in fin.snapshot())  # nothing got through
    finally:
        # Fin is back.
        fin.respond(200)
        fin.accept()
        for agent in agents:
            agent.close()

    assert eventually(lambda: states(server, cids) == {"delivered"}, timeout=60), states(
        server, cids
    )
    rows = outbox_rows(server, cids)
    assert len(rows) == N_CONVERSATIONS * N_CHANGES
    # Nothing anywhere in this database went to dead-letter.
    assert {r.state for r in outbox_rows(server)} <= {"delivered"}

    # Coalesced: after the outage each conversation's pending events went in ONE call (no change
    # was made after Fin came back), so 20 successful deliveries carried 200 changes.
    hits = [h for h in fin.snapshot() if h.conversation_id in cids]
    assert sorted(h.conversation_id for h in hits) == sorted(cids)
    assert len(hits) == N_CONVERSATIONS  # 20 calls for 200 changes

    # Retries happened: 503s were answered, and the attempts column counts the failed tries.
    failed = [a for a in fin.log if a.conversation_id in cids and a.status == 503]
    assert len(failed) >= N_CONVERSATIONS
    for cid in cids:
        assert max(r.attempts for r in rows if r.conversation_id == cid) >= 1, cid
    assert max(r.attempts for r in rows) >= 3

    # One delivery id per conversation, the same on every retry and on the final success, as
    # stored on its events; the attempt number grows with each try.
    for cid in cids:
        tries = fin.log_of(cid)
        assert len(tries) >= 2 and tries[-1].status == 200 and tries[0].status == 503, tries
        assert {t.delivery_id for t in tries} == {tries[0].delivery_id}, tries
        assert tries[0].delivery_id.startswith("dlv_")
        assert {r.delivery_id for r in rows if r.conversation_id == cid} == {tries[0].delivery_id}
        numbers = [t.attempt_no for t in tries]
        assert numbers == sorted(set(numbers)) and numbers[0] == 1, numbers
        assert tries[-1].headers["X-Webhook-Key"] == WEBHOOK_KEY
    assert len({fin.log_of(cid)[0].delivery_id for cid in cids}) == N_CONVERSATIONS


def test_a_call_that_raises_fails_its_own_delivery_only(tmp_path: Path) -> None:
    """The HTTP stack can raise what is not an httpx error (httpcore over anyio raised
    AttributeError on a connection dropped as it opened, in phase 3 above): that delivery is
    retried, and the others of the round are recorded, not left leased until their lease ends."""
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings(database_url=url, fin_webhook_url="http://fin.test/hooks/x")

    def fin(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["conversation_id"] == "broken":
            raise AttributeError("'NoneType' object has no attribute 'getpeername'")
        return httpx.Response(200, json={})

    async def one_round() -> int:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fin)) as http:
            return await Worker(db, settings).run_once(http)

    try:
        with db.transaction() as session:
            session.add_all(OutboxEvent(conversation_id=c, reason="t") for c in ("ok", "broken"))
        assert aio.run(one_round) == 2
        with db.read_session() as session:
            rows = {e.conversation_id: e for e in session.scalars(select(OutboxEvent))}
            assert rows["ok"].state == "delivered"
            broken = rows["broken"]
            assert (broken.state, broken.attempts, broken.lease_owner) == ("pending", 1, None)
            assert (broken.last_error or "").startswith("error: AttributeError"), broken
    finally:
        db.dispose()


# --- 2. 429 with Retry-After -------------------------------------------------------------------


@pytest.mark.parametrize("change_while_waiting", [False, True], ids=["idle", "busy"])
def test_retry_after_of_a_429_is_honoured(outage_server, outage_fin, change_while_waiting) -> None:
    server, fin = outage_server, outage_fin
    world = server.fin_world()
    cid = str(world.conversation()[0]["id"])
    with new_agent(server) as agent:
        try:
            fin.respond(429, {"Retry-After": "1"})
            change(agent, cid, 0)
            assert fin.wait_for(lambda log: any(a.conversation_id == cid for a in log))
            fin.respond(200)
            if change_while_waiting:
                # Fin said "not before 1 s": a new change must not bring the call forward.
                change(agent, cid, 1)
            assert fin.wait_for(
                lambda log: any(a.conversation_id == cid and a.status == 200 for a in log)
            )
        finally:
            fin.respond(200)
    tries = fin.log_of(cid)
    assert [t.status for t in tries] == [429, 200], tries
    gap = tries[1].at - tries[0].at
    assert gap >= 1.0 - 0.01, f"retried {gap:.3f} s after a 429 with Retry-After: 1"
    assert tries[1].delivery_id == tries[0].delivery_id
    assert eventually(lambda: states(server, [cid]) == {"delivered"})


# --- 3. permanent failure, dead-letter, and the outbox CLI ------------------------------------


def test_a_permanent_failure_goes_to_dead_letter_and_replay_delivers_it(
    dead_server, dead_fin, tmp_path
) -> None:
    server, fin = dead_server, dead_fin
    world = server.fin_world()
    with new_agent(server) as agent:
        # Fin rejects the call: 400 is permanent, so dead-letter at once, after one attempt.
        fin.respond(400)
        broken = str(world.conversation()[0]["id"])
        change(agent, broken, 0)
        assert eventually(lambda: states(server, [broken]) == {"dead"})
        [dead] = outbox_rows(server, [broken])
        assert dead.attempts == 1
        assert "400" in (dead.last_error or "")
        [tried] = fin.log_of(broken)
        assert tried.status == 400

        # Another conversation waits out a long Retry-After: pending, and it has an age.
        fin.respond(503, {"Retry-After": "600"})
        waiting = str(world.conversation()[0]["id"])
        before_change = time.time()
        change(agent, waiting, 0)
        after_change = time.time()
        assert fin.wait_for(lambda log: any(a.conversation_id == waiting for a in log))
        assert eventually(lambda: outbox_rows(server, [waiting])[0].attempts == 1)
        assert len(fin.log_of(broken)) == 1  # the dead one is not tried again

        before_cli = time.time()
        status = findesk_json(server, tmp_path, "status")
        after_cli = time.time()
        assert status["counts"] == {"pending": 1, "delivered": 0, "dead": 1}
        age = status["oldest_pending_age_seconds"]
        assert before_cli - after_change - 0.5 <= age <= after_cli - before_change + 0.5, age

        listed = findesk_json(server, tmp_path, "list", "--state", "dead")["events"]
        assert len(listed) == 1
        assert listed[0]["conversation_id"] == broken
        assert listed[0]["state"] == "dead"
        assert listed[0]["attempts"] == 1
        assert "400" in listed[0]["last_error"]
        assert listed[0]["delivery_id"] == tried.delivery_id

        # The cause is fixed; replaying dead-letter (and pending) events delivers them now.
        fin.respond(200)
        assert findesk_json(server, tmp_path, "replay", "--dead") == {"replayed": 2}
        assert fin.wait_for(
            lambda log: {a.conversation_id for a in log if a.status == 200} >= {broken, waiting}
        )
        assert eventually(lambda: states(server, [broken, waiting]) == {"delivered"})
        assert len(fin.for_conversation(broken)) == 1
        after = findesk_json(server, tmp_path, "status")
        assert after["counts"] == {"pending": 0, "delivered": 2, "dead": 0}
        assert after["oldest_pending_age_seconds"] is None

        # Replaying one conversation with nothing pending records a fresh event, delivered.
        assert findesk_json(server, tmp_path, "replay", "--conversation", broken) == {"replayed": 1}
        assert fin.wait_until(lambda got: sum(r.conversation_id == broken for r in got) == 2)
        assert eventually(lambda: states(server, [broken]) == {"delivered"})
        rows = outbox_rows(server, [broken])
        assert [r.reason for r in rows][-1] == "replay" and len(rows) == 2

        # An unknown conversation is a clear error.
        result = findesk_outbox(server, tmp_path, "replay", "--conversation", "conv_nope")
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert "No conversation with id 'conv_nope'" in " ".join(result.stderr.split())
        assert len(outbox_rows(server)) == 3


# --- 4. the retry window ----------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["503", "refused"])
def test_events_go_to_dead_letter_after_the_retry_window(
    window_server, window_fin, failure
) -> None:
    server, fin = window_server, window_fin
    world = server.fin_world()
    cid = str(world.conversation()[0]["id"])
    with new_agent(server) as agent:
        try:
            if failure == "503":
                fin.respond(503)
            else:
                fin.refuse()
            started = time.time()
            change(agent, cid, 0)
            assert eventually(lambda: states(server, [cid]) == {"dead"}, timeout=20)
            dead_seen = time.time()
        finally:
            fin.respond(200)
            if failure == "refused":
                fin.accept()
    [row] = outbox_rows(server, [cid])
    # Tried at once, then retried (back-off is 0.05-0.5 s) until the window, which runs from
    # the first failed attempt, had passed; not sooner.
    assert row.attempts >= 2, row
    assert row.first_failed_at is not None
    assert row.first_failed_at.timestamp() - started < RETRY_WINDOW
    assert dead_seen - row.first_failed_at.timestamp() >= RETRY_WINDOW
    if failure == "503":
        tries = fin.log_of(cid)
        assert [t.status for t in tries] == [503] * row.attempts
        assert tries[0].wall <= row.first_failed_at.timestamp() + 0.01
        # Every try but the last was answered (and retried) within the window.
        assert tries[-2].wall - row.first_failed_at.timestamp() <= RETRY_WINDOW + 0.01
        assert "503" in (row.last_error or "")
    else:
        assert (row.last_error or "").startswith("network"), row.last_error


# --- 5. no webhook configured -----------------------------------------------------------------


def test_without_a_webhook_events_wait_and_a_configured_worker_delivers_them(
    idle_server, tmp_path
) -> None:
    server = idle_server
    assert server.settings.fin_webhook_target is None
    world = server.fin_world()
    cids = [str(world.conversation()[0]["id"]) for _ in range(3)]
    with new_agent(server) as agent:
        for cid in cids:
            change(agent, cid, 0)
            change(agent, cid, 1)
    rows = outbox_rows(server, cids)
    assert len(rows) == 6
    assert {(r.state, r.attempts, r.delivery_id, r.lease_owner) for r in rows} == {
        ("pending", 0, None, None)
    }
    status = findesk_json(server, tmp_path, "status")
    assert status["counts"] == {"pending": 6, "delivered": 0, "dead": 0}
    assert status["oldest_pending_age_seconds"] > 0
    assert status["target"] is None

    late_fin = Receiver().accept()
    try:

        async def one_round(settings: Settings) -> int:
            async with httpx.AsyncClient(timeout=10) as http:
                return await Worker(server.db, settings).run_once(http)

        # The server's own worker, without a target, makes no call and leaves events alone.
        assert aio.run(lambda: one_round(server.settings)) == 0
        assert outbox_rows(server, cids) == rows

        # Fin gets configured, with a retry window shorter than the events' age: they still get
        # their whole window, from their first failed attempt, not from when they were recorded.
        window = 0.5
        oldest = min(r.created_at for r in rows).timestamp()
        assert eventually(lambda: time.time() - oldest > window)
        configured = Settings(
            database_url=server.database_url,
            **notifier_settings(late_fin, notifier_retry_window_seconds=window),
        )
        late_fin.respond(503)
        assert aio.run(lambda: one_round(configured)) == len(cids)
        assert {(r.state, r.attempts) for r in outbox_rows(server, cids)} == {("pending", 1)}

        # Fin answers again: the next rounds deliver them, one call per conversation.
        late_fin.respond(200)

        def a_round_delivered_all() -> bool:
            aio.run(lambda: one_round(configured))  # claims only what its back-off made due
            return states(server, cids) == {"delivered"}

        assert eventually(a_round_delivered_all, timeout=10)
        hits = late_fin.snapshot()
        assert sorted(h.conversation_id for h in hits) == sorted(cids)
        assert {h.headers["X-Webhook-Key"] for h in hits} == {WEBHOOK_KEY}
        for cid in cids:
            tries = late_fin.log_of(cid)
            assert [t.status for t in tries] == [503, 200]
            assert tries[0].delivery_id == tries[1].delivery_id
    finally:
        late_fin.close()
