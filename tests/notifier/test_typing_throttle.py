"""The typing throttle holds across processes: two senders with nothing in common but the
database (as two app processes have) send one typing event per conversation and agent within
the throttle, and another once it has passed. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.aio import run
from support.server import database_url

from findesk.agents.models import Agent
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade
from findesk.notifier.typing import TypingSender

THROTTLE = 1.0


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = database_url(request.param, request, tmp_path)
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def agent(name: str) -> Agent:
    return Agent(id=f"agt_{uuid.uuid4().hex[:12]}", name=name, email=f"{name}@example.com")


class Fin:
    """Counts the typing events that reach Fin's webhook."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.received.append(json.loads(request.content))
            return httpx.Response(202, json={})

        return httpx.MockTransport(handle)

    def pairs(self) -> list[tuple[str, str]]:
        return [(r["conversation_id"], r["data"]["agent"]["id"]) for r in self.received]


async def settle(senders: list[TypingSender]) -> None:
    """Until every queued event has been decided (sent or throttled)."""
    await asyncio.sleep(0)  # signal() queues from the loop's next turn: let it
    queues = [s._queue for s in senders]
    assert all(q is not None for q in queues)
    await asyncio.wait_for(asyncio.gather(*(q.join() for q in queues if q is not None)), 30)


def test_two_processes_send_one_typing_event_within_the_throttle(db: Database) -> None:
    settings = Settings(
        database_url=db.url,
        fin_webhook_url="http://fin.invalid/hook",
        typing_throttle_seconds=THROTTLE,
    )
    fin = Fin()
    ada, bob = agent("ada"), agent("bob")

    async def scenario() -> None:
        senders = [TypingSender(settings, db, transport=fin.transport()) for _ in range(2)]
        for sender in senders:
            await sender.start()
        try:
            started = time.monotonic()
            for sender in senders:  # each process signals each pair twice
                for who in (ada, bob, ada, bob):
                    sender.signal("conv_a", who)
            await settle(senders)
            assert time.monotonic() - started < THROTTLE, "too slow to prove anything"
            assert sorted(fin.pairs()) == sorted([("conv_a", ada.id), ("conv_a", bob.id)])

            await asyncio.sleep(THROTTLE)  # the throttle has passed: one more, from either
            for sender in reversed(senders):
                sender.signal("conv_a", ada)
            await settle(senders)
            assert fin.pairs().count(("conv_a", ada.id)) == 2
        finally:
            for sender in senders:
                await sender.stop()

    run(scenario)


def test_a_call_that_raises_does_not_stop_the_sender(db: Database) -> None:
    """httpcore over anyio can raise AttributeError on a connection dropped as it opens: that
    event is lost (typing is fleeting), the next ones are still sent."""
    settings = Settings(
        database_url=db.url, fin_webhook_url="http://fin.invalid/hook", typing_throttle_seconds=0
    )
    fin, calls = Fin(), []
    ada, bob = agent("ada"), agent("bob")
    answer = fin.transport().handle_request

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise AttributeError("'NoneType' object has no attribute 'getpeername'")
        return answer(request)

    async def scenario() -> None:
        sender = TypingSender(settings, db, transport=httpx.MockTransport(flaky))
        await sender.start()
        try:
            for who in (ada, bob):
                sender.signal("conv_a", who)
                await settle([sender])
        finally:
            await sender.stop()

    run(scenario)
    assert len(calls) == 2
    assert fin.pairs() == [("conv_a", bob.id)]
