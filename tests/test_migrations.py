"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from support.postgres import PostgresServer

from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.models import Base


def schema_drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_sqlite_migrates_from_nothing_twice_and_matches_models(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'findesk.db'}"
    upgrade(url)
    upgrade(url)  # a second run is a no-op
    assert schema_drift(url) == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    with db.read_session() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()


@pytest.mark.postgres
def test_postgres_migrates_from_nothing_and_matches_models(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("findesk_migrations")
    upgrade(url)
    upgrade(url)
    assert schema_drift(url) == []
