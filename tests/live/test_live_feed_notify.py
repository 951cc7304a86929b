"""On PostgreSQL a change committed by another process reaches this process's live feed at once
(LISTEN/NOTIFY), not at its next poll (30 s here, so that only a notification can be in time);
nothing is missed while the listening connection is down; and a row that commits after one with
a higher id was read still arrives.

"Another process" is a plain psycopg connection: a commit through this process's own sessions
would wake the feed through the in-process commit signal instead.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from support.aio import run
from support.postgres import PostgresServer

from findesk.kit.db import Database
from findesk.live.broker import LiveFeed
from findesk.migrations import upgrade

pytestmark = pytest.mark.postgres

POLL_SECONDS = 30.0
IN_TIME = 3.0  # "at once", with room for a busy machine; far below the poll


@pytest.fixture
def database(pg_server: PostgresServer) -> str:
    url = pg_server.create_database(f"live_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    return url


def raw(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def insert_activity(conn: psycopg.Connection[Any], conversation_id: str) -> int:
    row = conn.execute(
        "INSERT INTO activity (conversation_id, kind, owner, actor, at)"
        " VALUES (%s, 'message', 'human', 'agent', now()) RETURNING id",
        (conversation_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def commit_elsewhere(url: str, conversation_id: str) -> int:
    with raw(url) as conn:
        return insert_activity(conn, conversation_id)  # committed as the block ends


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.02)


async def next_event(queue: asyncio.Queue[dict[str, Any] | None]) -> dict[str, Any]:
    item = await asyncio.wait_for(queue.get(), IN_TIME)
    assert item is not None
    return item


async def with_feed(url: str, scenario: Callable[[LiveFeed], Awaitable[None]]) -> None:
    db = Database(url)
    feed = LiveFeed(db, poll_seconds=POLL_SECONDS)
    await feed.start()
    try:
        await eventually(lambda: feed.listening)
        await scenario(feed)
    finally:
        await feed.stop()
        db.dispose()


def test_a_commit_by_another_process_wakes_the_feed_at_once(database: str) -> None:
    async def scenario(feed: LiveFeed) -> None:
        queue = feed.subscribe()
        for n in range(3):
            conversation_id = f"conv_elsewhere{n}"
            started = time.monotonic()
            event_id = await asyncio.to_thread(commit_elsewhere, database, conversation_id)
            item = await next_event(queue)
            assert (item["id"], item["conversation_id"]) == (event_id, conversation_id)
            assert time.monotonic() - started < IN_TIME

    run(lambda: with_feed(database, scenario))


def test_nothing_is_missed_while_the_listening_connection_is_down(database: str) -> None:
    async def scenario(feed: LiveFeed) -> None:
        queue = feed.subscribe()
        assert feed.listener is not None
        first_backend = feed.listener.backend_pid

        def cut_and_change() -> int:
            with raw(database) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first_backend,))
                admin.commit()
                # Committed while the feed is not listening (it waits before reconnecting).
                return insert_activity(admin, "conv_meanwhile")

        missed = await asyncio.to_thread(cut_and_change)
        item = await next_event(queue)  # read when it listens again
        assert (item["id"], item["conversation_id"]) == (missed, "conv_meanwhile")
        await eventually(lambda: feed.listening)
        assert feed.listener.backend_pid not in (None, first_backend)
        later = await asyncio.to_thread(commit_elsewhere, database, "conv_later")
        assert (await next_event(queue))["id"] == later

    run(lambda: with_feed(database, scenario))


def test_a_row_that_commits_after_a_higher_id_was_read_still_arrives(database: str) -> None:
    async def scenario(feed: LiveFeed) -> None:
        queue = feed.subscribe()
        slow = await asyncio.to_thread(raw, database)
        try:
            early_id = await asyncio.to_thread(insert_activity, slow, "conv_slow")  # not committed
            quick_id = await asyncio.to_thread(commit_elsewhere, database, "conv_quick")
            assert early_id < quick_id
            assert (await next_event(queue))["id"] == quick_id
            await asyncio.to_thread(slow.commit)
            item = await next_event(queue)
            assert (item["id"], item["conversation_id"]) == (early_id, "conv_slow")
        finally:
            await asyncio.to_thread(slow.close)
        assert queue.empty()

    run(lambda: with_feed(database, scenario))
