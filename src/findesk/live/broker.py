"""One poller per process reads the feed and fans it out to every live connection.

Commits in this process wake it at once. On PostgreSQL, a trigger on the activity table
(``NOTIFY findesk_activity``, migration 0012) tells every process of each commit that added to
the feed, and each process listens on a connection of its own (``kit.pg_listen``): changes made
by other processes wake it at once too, and polling is only the fallback (every
``poll_seconds`` while the listening connection is down, at least every
``LISTENING_POLL_SECONDS`` while it is up). On SQLite, one process, polling is all there is.

The notification only wakes the poller: what it passes on is read from the table, after the
last id it read. Ids are handed out when a row is inserted, not when it commits, so on
PostgreSQL a row may commit after one with a higher id was read: the ids skipped over are kept as
*gaps* and asked for again at every read for ``GAP_SECONDS``; a row that turns up late is passed
on then, out of id order. (A rolled-back insert leaves a gap that never fills; it is forgotten.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from findesk.kit.db import Database
from findesk.kit.pg_listen import Listener
from findesk.kit.timeutil import isoformat, utcnow
from findesk.live import service
from findesk.live.models import Activity

log = logging.getLogger("findesk.live")

RETENTION = timedelta(days=2)
SUBSCRIBER_QUEUE = 1000
BATCH = 500
CHANNEL = "findesk_activity"
LISTENING_POLL_SECONDS = 10.0  # the fallback poll while notifications arrive
GAP_SECONDS = 30.0  # how long an id skipped over is looked for again
MAX_GAPS = 1000
PURGE_EVERY_SECONDS = 3600.0
COALESCE_SECONDS = 0.05  # how long a wake waits for more commits before the feed is read


def as_event(row: Activity, user_id: str | None = None) -> dict[str, Any]:
    """A feed row as readers get it; ``user_id``: the conversation's end user."""
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "user_id": user_id,
        "kind": row.kind,
        "owner": row.owner,
        "actor": row.actor,
        "at": isoformat(row.at),
    }


class LiveFeed:
    def __init__(self, db: Database, poll_seconds: float = 1.0) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._dropped: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._last_id = 0
        self._gaps: dict[int, float] = {}  # id skipped over -> until when it is looked for
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._last_id = await run_in_threadpool(self._read_last_id)
        self._unsubscribe = service.recorded.subscribe(lambda _count: self.wake())
        if not self.db.is_sqlite:
            self._listener = Listener(
                self.db.engine,
                CHANNEL,
                self._wake.set,
                self._wake.set,  # (re)listening: read what may have been missed meanwhile
                application_name="findesk live feed",
            )
            self._listener_task = asyncio.create_task(
                self._listener.run(), name="findesk-live-listener"
            )
        self._task = asyncio.create_task(self._run(), name="findesk-live-feed")

    async def stop(self) -> None:
        self._unsubscribe()
        for task in (self._listener_task, self._task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    def wake(self) -> None:
        loop, event = self._loop, self._wake
        # Set already: the feed has not read yet, and its read (after it clears the event)
        # comes after this commit. Skipping spares every commit a write to the loop's
        # self-pipe (12% of a Fin POST /messages under load). Read from another thread, a
        # stale "not set" costs one more wake, never a missed one.
        if loop is None or event is None or event.is_set() or loop.is_closed():
            return
        loop.call_soon_threadsafe(event.set)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)
        self._dropped.discard(queue)

    def was_dropped(self, queue: asyncio.Queue[dict[str, Any] | None]) -> bool:
        """True once a subscriber fell too far behind: it should end and resume."""
        return queue in self._dropped

    @property
    def last_id(self) -> int:
        """The highest id passed on so far; a row with a lower id may still turn up (late)."""
        return self._last_id

    @property
    def listening(self) -> bool:
        """Whether other processes' commits wake this feed (PostgreSQL, connection up)."""
        return self._listener is not None and self._listener.listening

    @property
    def listener(self) -> Listener | None:
        return self._listener

    def _read_last_id(self) -> int:
        with self.db.read_session() as session:
            return service.last_id(session)

    def _read_after(self, after_id: int, gaps: list[int]) -> list[dict[str, Any]]:
        with self.db.read_session() as session:
            return [as_event(*found) for found in service.after(session, after_id, BATCH, gaps)]

    def backlog(self, after_id: int) -> list[dict[str, Any]]:
        """What a resuming connection missed (blocking: call from a thread)."""
        with self.db.read_session() as session:
            return [as_event(*found) for found in service.after(session, after_id)]

    def _take(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events read that are new (advancing the last id, noting the ids skipped)."""
        now = time.monotonic()
        fresh = []
        for item in events:
            event_id = item["id"]
            if self._gaps.pop(event_id, None) is not None:
                fresh.append(item)  # late: committed after a higher id was read
            elif event_id > self._last_id:
                for missing in range(max(self._last_id + 1, event_id - MAX_GAPS), event_id):
                    self._gaps[missing] = now + GAP_SECONDS
                self._last_id = event_id
                fresh.append(item)
        for gap, until in list(self._gaps.items()):
            if until < now:
                del self._gaps[gap]
        while len(self._gaps) > MAX_GAPS:
            del self._gaps[min(self._gaps)]
        return fresh

    def _poll_seconds(self) -> float:
        if self.listening:
            return max(self.poll_seconds, LISTENING_POLL_SECONDS)
        return self.poll_seconds

    async def _run(self) -> None:
        assert self._wake is not None
        next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        while True:
            self._wake.clear()  # before reading: a commit from now on wakes the next round
            try:
                read = await run_in_threadpool(self._read_after, self._last_id, sorted(self._gaps))
            except Exception:
                log.exception("live feed poll failed")
                read = []
            for item in self._take(read):
                for queue in list(self._subscribers):
                    try:
                        queue.put_nowait(item)
                    except asyncio.QueueFull:  # a stalled client: end its stream; it resumes
                        self._subscribers.discard(queue)
                        self._dropped.add(queue)
            if len(read) == BATCH:
                continue  # more to read
            if time.monotonic() >= next_purge:
                next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                await run_in_threadpool(self._purge)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds())
            except TimeoutError:
                continue
            # Woken by a commit: let the commits of the next moment join it, and read them all
            # at once (hundreds of writes a second make as many wakes, not as many reads).
            await asyncio.sleep(COALESCE_SECONDS)

    def _purge(self) -> None:
        with self.db.transaction() as session:
            service.purge(session, utcnow() - RETENTION)
