"""Opening a SQLite connection beside another one's WAL recovery or clean-up."""

from __future__ import annotations

import sqlite3

import pytest

from findesk.kit.db import enter_wal


class _Cursor:
    """Answers the way SQLite does while another connection holds the WAL files for a
    moment: "database is locked" at once, `busy` times, then the pragma goes through."""

    def __init__(self, busy: int, message: str = "database is locked") -> None:
        self.busy = busy
        self.message = message
        self.calls = 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode=WAL"
        self.calls += 1
        if self.calls <= self.busy:
            raise sqlite3.OperationalError(self.message)


def test_a_start_beside_wal_recovery_waits_for_it() -> None:
    # CI once failed a concurrent start this way: the connect hook raised on the first try.
    cursor = _Cursor(busy=3)
    enter_wal(cursor)
    assert cursor.calls == 4


def test_a_lock_that_outlasts_the_patience_is_reported() -> None:
    cursor = _Cursor(busy=10_000)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enter_wal(cursor, patience=0.05)
    assert cursor.calls > 1


def test_other_errors_are_not_retried() -> None:
    cursor = _Cursor(busy=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        enter_wal(cursor)
    assert cursor.calls == 1
