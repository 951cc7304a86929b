"""0026 (teams, presence, capacity, routing rules) comes off cleanly and goes on again on a
database with data, on both backends: agents and conversations stay (no table rebuilt, so the
full-text search triggers on SQLite still work), the teams and rules go."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from support.postgres import PostgresServer
from test_migrations import schema_drift

from findesk.migrations import alembic_config, upgrade


def _down_to_0025_and_up_again(url: str) -> None:
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO agents (id, email, name, is_bot, role, active, presence,"
                    " created_at, updated_at) VALUES ('agt_a', 'a@x.test', 'Ann', false,"
                    " 'agent', true, 'online', :c, :c)"
                ),
                {"c": "2026-12-04 10:00:00+00:00"},
            )
            db.execute(
                text(
                    "INSERT INTO teams (id, name, assignment_method, capacity_default,"
                    " created_at, updated_at) VALUES ('team_a', 'Billing', 'round_robin', 5,"
                    " :c, :c)"
                ),
                {"c": "2026-12-04 10:00:00+00:00"},
            )
        command.downgrade(alembic_config(url), "0025")
        names = set(inspect(engine).get_table_names())
        assert not names & {"teams", "team_members", "routing_rules"}
        assert "presence" not in {c["name"] for c in inspect(engine).get_columns("agents")}
        with engine.connect() as db:
            assert db.execute(text("SELECT name FROM agents")).scalars().all() == ["Ann"]
        upgrade(url)
        assert schema_drift(url) == []
        with engine.connect() as db:
            assert db.execute(text("SELECT presence FROM agents")).scalars().all() == ["offline"]
    finally:
        engine.dispose()


def test_sqlite_0026_goes_down_and_up_again(tmp_path) -> None:
    _down_to_0025_and_up_again(f"sqlite:///{tmp_path / 'teams.db'}")


@pytest.mark.postgres
def test_postgres_0026_goes_down_and_up_again(pg_server: PostgresServer) -> None:
    _down_to_0025_and_up_again(pg_server.create_database("findesk_teams_0026"))
