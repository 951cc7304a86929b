"""Telling this process that a transaction committed something worth acting on at once.

A service marks the session when it writes such a row (an outbox event, an activity entry);
after that session commits, every subscriber is called with how many rows were marked. A rolled
back transaction calls no one. Other processes find the rows when they next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session


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
