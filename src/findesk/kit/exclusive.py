"""One pass at a time per database, for the background jobs that keep Intercom in step (the
knowledge publisher, the connector sync, the object mirror): on PostgreSQL a session-level
advisory lock (``key``, one per job), held across processes; on SQLite a lock per database and
key in this process (one process serves a SQLite database)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from findesk.kit.db import Database

_process_locks: dict[tuple[str, int], threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(url: str, key: int) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault((url, key), threading.Lock())


@contextmanager
def exclusive(db: Database, key: int, *, wait: bool, stop: threading.Event) -> Iterator[bool]:
    """Yields True holding the lock, or False: not ``wait``ing and it is taken, or ``stop``
    was set while waiting (checked every half second)."""
    if db.is_sqlite:
        local = _process_lock(db.url, key)
        while not local.acquire(blocking=wait, timeout=0.5 if wait else -1):
            if not wait or stop.is_set():
                yield False
                return
        try:
            yield True
        finally:
            local.release()
        return
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        lock = text("SELECT pg_try_advisory_lock(:key)")
        while not connection.scalar(lock, {"key": key}):
            if not wait or stop.wait(0.5):
                yield False
                return
        try:
            yield True
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
