"""Database plumbing: the declarative base, portable column types, engines and sessions.

SQLite runs in WAL mode with SQLAlchemy in charge of BEGIN: read sessions open a deferred
transaction, write sessions ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy
timeout instead of failing when a reader upgrades to a writer. PostgreSQL needs none of this.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from findesk.kit.files import private_file, sqlite_path
from findesk.kit.timeutil import as_utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware UTC datetimes, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


JSONType = JSON().with_variant(JSONB(), "postgresql")

_WRITE = "findesk_write"
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if (path := sqlite_path(url)) is not None:
            private_file(path)
        engine = create_engine(
            url,
            pool_size=16,
            max_overflow=48,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            enter_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(_WRITE, False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # may wait for the lock, or fail
            else:  # never waits nor fails: straight to the driver, on every read
                conn.connection.driver_connection.execute("BEGIN")

        return engine
    return create_engine(url, pool_size=10, max_overflow=30, pool_pre_ping=True)


def enter_wal(cursor: Any, patience: float = 30.0) -> None:
    """Put the connection in WAL mode. SQLite answers "database is locked" at once, without
    the busy handler, while another connection runs WAL recovery or, as the last one closing,
    deletes the WAL files; both take milliseconds, so a start beside them waits and retries."""
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class Database:
    """One engine and the two kinds of session the app uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(**{_WRITE: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time. Queueing writers of this process on a lock is fair
        # and prompt; leaving it to the busy timeout's growing sleeps starves unlucky writers.
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def read_session(self) -> Session:
        return self._read()

    def write_session(self) -> Session:
        return self._write()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection in a read transaction (one consistent view): for the hot reads
        that build no ORM object, without a session's bookkeeping. It ends with a COMMIT, which
        for a read is a rollback's equal: psycopg forgets the statements it has prepared on a
        ROLLBACK, and PostgreSQL would plan each of them again on every call."""
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session that commits on success and rolls back on any error.

        Inside ``joining(session)`` it is a savepoint of that session's transaction instead,
        which commits or rolls back with the rest of it."""
        joined = _joined.get()
        if joined is not None and joined[0] is self:
            with joined[1].begin_nested():
                yield joined[1]
            return
        with self._write_lock or nullcontext(), self.write_session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def joining(self, session: Session) -> Iterator[None]:
        """Make every ``transaction()`` of this database, in this context (thread), part of
        ``session``'s transaction: one unit of work whose owner commits it (a request and the
        record that it was answered, say)."""
        token = _joined.set((self, session))
        try:
            yield
        finally:
            _joined.reset(token)

    def dispose(self) -> None:
        self.engine.dispose()


# The transaction that ``Database.transaction()`` calls join, if any (see ``joining``).
_joined: ContextVar[tuple[Database, Session] | None] = ContextVar(
    "findesk_joined_transaction", default=None
)


def insert_once(
    session: Session, obj: T, find_existing: Callable[[], T | None], *, looked: bool = False
) -> tuple[T, bool]:
    """Insert ``obj`` unless a row with its unique key exists; safe under concurrent inserts.

    Returns the row and whether this call created it. A concurrent insert of the same key makes
    our INSERT fail on the unique constraint inside a savepoint; we then read the winner's row.
    ``looked``: the caller has just looked for it in this transaction and found nothing. On
    SQLite nothing can come between (a write transaction holds the database's only write lock),
    so it is added without a second look or a savepoint, and written with the rest of the
    transaction.
    """
    if looked and session.get_bind().dialect.name == "sqlite":
        session.add(obj)
        return obj, True
    existing = None if looked else find_existing()
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            session.add(obj)
            session.flush()
    except IntegrityError:
        existing = find_existing()
        if existing is None:
            raise
        return existing, False
    return obj, True
