"""One poller per process reads the feed and fans it out to every live connection.

Commits in this process wake it at once; changes made by other processes (Fin's calls served
elsewhere, workers) arrive at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from findesk.kit.db import Database
from findesk.kit.timeutil import isoformat, utcnow
from findesk.live import service
from findesk.live.models import Activity

log = logging.getLogger("findesk.live")

RETENTION = timedelta(days=2)
SUBSCRIBER_QUEUE = 1000


def as_event(row: Activity) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
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
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = lambda: None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._last_id = await run_in_threadpool(self._read_last_id)
        self._unsubscribe = service.recorded.subscribe(lambda _count: self.wake())
        self._task = asyncio.create_task(self._run(), name="findesk-live-feed")

    async def stop(self) -> None:
        self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for queue in list(self._subscribers):
            queue.put_nowait(None)

    def wake(self) -> None:
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
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
        return self._last_id

    def _read_last_id(self) -> int:
        with self.db.read_session() as session:
            return service.last_id(session)

    def _read_after(self, after_id: int) -> list[dict[str, Any]]:
        with self.db.read_session() as session:
            return [as_event(row) for row in service.after(session, after_id)]

    def backlog(self, after_id: int) -> list[dict[str, Any]]:
        """What a resuming connection missed (blocking: call from a thread)."""
        return self._read_after(after_id)

    async def _run(self) -> None:
        assert self._wake is not None
        rounds = 0
        while True:
            try:
                events = await run_in_threadpool(self._read_after, self._last_id)
            except Exception:
                log.exception("live feed poll failed")
                events = []
            for item in events:
                self._last_id = max(self._last_id, item["id"])
                for queue in list(self._subscribers):
                    try:
                        queue.put_nowait(item)
                    except asyncio.QueueFull:  # a stalled client: end its stream; it resumes
                        self._subscribers.discard(queue)
                        self._dropped.add(queue)
            if len(events) == 500:
                continue  # more to read
            rounds += 1
            if rounds % 3600 == 0:
                await run_in_threadpool(self._purge)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()

    def _purge(self) -> None:
        with self.db.transaction() as session:
            service.purge(session, utcnow() - RETENTION)
