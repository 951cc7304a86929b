"""Telling this process that a transaction committed something worth acting on at once.

A service marks the session when it writes such a row (an outbox event, an activity entry);
after that session commits, every subscriber is called with how many rows were marked. A rolled
back transaction calls no one. Other processes find the rows when they next poll.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("findesk.background")


class CommitSignal:
    def __init__(self, name: str) -> None:
        self._key = f"findesk_signal_{name}"
        self._subscribers: list[Callable[[int], None]] = []
        self._lock = threading.Lock()
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._after_rollback)

    def mark(self, session: Session) -> None:
        session.info[self._key] = session.info.get(self._key, 0) + 1

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(count)`` after each commit that marked rows; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _after_commit(self, session: Session) -> None:
        count = session.info.pop(self._key, 0)
        if not count:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(count)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(self._key, None)


class Alarm:
    """How a background loop sleeps until it is due or woken (by a commit signal, from any
    thread). ``arm()`` on the loop that will sleep; ``wake()`` before that does nothing."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def arm(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def wake(self) -> None:
        loop, event = self._loop, self._event
        # Set already: the loop wakes anyway, and looks after this commit (see LiveFeed.wake).
        if loop is None or event is None or event.is_set() or loop.is_closed():
            return
        loop.call_soon_threadsafe(event.set)

    async def sleep(self, seconds: float) -> None:
        """Up to ``seconds``, less if woken meanwhile (or since the last sleep)."""
        assert self._event is not None, "arm() first"
        try:
            await asyncio.wait_for(self._event.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass
        self._event.clear()


class BackgroundLoop:
    """What every background loop shares (the delivery worker, the publisher, the snooze
    waker): it sleeps on an ``Alarm`` until due, ``wake()`` (from any thread) makes it look
    now, ``stop()`` ends it after the round in hand. ``run()`` arms the alarm first."""

    def __init__(self) -> None:
        self._alarm = Alarm()
        self._stopping = False

    def wake(self) -> None:
        """Look now; safe to call from any thread."""
        self._alarm.wake()

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    async def _sleep(self, seconds: float) -> None:
        if not self._stopping:
            await self._alarm.sleep(seconds)


class PassJob(Protocol):
    """A job done in passes (the knowledge publisher, the object mirror): what ``PassLoop``
    runs."""

    def sync(self, *, due_only: bool, wait: bool) -> PassSummary: ...
    def seconds_until_due(self, ceiling: float) -> float: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...


class PassSummary(Protocol):
    @property
    def error(self) -> str | None: ...
    @property
    def skipped(self) -> bool: ...


class PassLoop(BackgroundLoop):
    """Runs a job's passes in the background until ``stop()``: at once when ``requested`` says
    a commit gave it work, else when its next retry is due (at most ``poll_seconds`` away);
    after a pass that failed as a whole, not before ``retry_seconds``."""

    def __init__(
        self,
        job: PassJob,
        requested: CommitSignal,
        *,
        name: str,
        poll_seconds: float,
        retry_seconds: float,
    ) -> None:
        self.job = job
        self.requested = requested
        self.name = name
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        super().__init__()

    def stop(self) -> None:
        self.job.stop()
        super().stop()

    async def run(self) -> None:
        self._alarm.arm()
        unsubscribe = self.requested.subscribe(lambda _count: self.wake())
        log.info("%s started", self.name)
        try:
            while not self._stopping:
                delay = self.poll_seconds
                try:
                    summary = await asyncio.to_thread(self.job.sync, due_only=True, wait=False)
                    if summary.error is not None and not self._stopping:
                        delay = max(self.poll_seconds, self.retry_seconds)
                    elif not summary.skipped:
                        delay = await asyncio.to_thread(
                            self.job.seconds_until_due, self.poll_seconds
                        )
                except Exception:  # a database hiccup must not end the loop
                    log.exception("%s pass failed", self.name)
                await self._sleep(delay)
        finally:
            unsubscribe()
            await asyncio.to_thread(self.job.close)
            log.info("%s stopped", self.name)
