"""0028 (teams' business hours) comes off cleanly and goes on again on a database with teams,
on both backends: the teams stay, always open (no hours) and with no holidays."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from support.postgres import PostgresServer
from test_migrations import schema_drift

from findesk.migrations import alembic_config, upgrade

HOURS_COLUMNS = {"timezone", "business_hours", "holidays"}


def _down_to_0027_and_up_again(url: str) -> None:
    command.upgrade(alembic_config(url), "0027")
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO teams (id, name, assignment_method, capacity_default,"
                    " created_at, updated_at) VALUES ('team_a', 'Billing', 'round_robin', 5,"
                    " :c, :c)"
                ),
                {"c": "2026-12-04 10:00:00+00:00"},
            )
        upgrade(url)
        assert schema_drift(url) == []
        with engine.connect() as db:
            row = db.execute(text("SELECT timezone, business_hours, holidays FROM teams")).one()
        assert row[0] is None and row[1] is None
        assert row[2] in ([], "[]")  # a JSON list on PostgreSQL, its text on SQLite
        command.downgrade(alembic_config(url), "0027")
        columns = {c["name"] for c in inspect(engine).get_columns("teams")}
        assert not columns & HOURS_COLUMNS
        with engine.connect() as db:
            assert db.execute(text("SELECT name FROM teams")).scalars().all() == ["Billing"]
        upgrade(url)
        assert schema_drift(url) == []
    finally:
        engine.dispose()


def test_sqlite_0028_goes_down_and_up_again(tmp_path) -> None:
    _down_to_0027_and_up_again(f"sqlite:///{tmp_path / 'hours.db'}")


@pytest.mark.postgres
def test_postgres_0028_goes_down_and_up_again(pg_server: PostgresServer) -> None:
    _down_to_0027_and_up_again(pg_server.create_database("findesk_team_hours_0028"))
