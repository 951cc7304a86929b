"""0031 (``conversations.sla_timed``) marks the conversations that have SLA timers already, and
only those, comes off cleanly and goes on again, on both backends."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from support.postgres import PostgresServer
from test_migrations import schema_drift

from findesk.migrations import alembic_config, upgrade

AT = "2026-12-04 10:00:00+00:00"


def _flags(url: str) -> dict[str, bool]:
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            rows = db.execute(text("SELECT id, sla_timed FROM conversations ORDER BY id"))
            return {row[0]: bool(row[1]) for row in rows}
    finally:
        engine.dispose()


def _marks_the_timed_ones(url: str) -> None:
    command.upgrade(alembic_config(url), "0030")
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO end_users (id, attributes, created_at, updated_at)"
                    " VALUES ('usr_a', '{}', :at, :at)"
                ),
                {"at": AT},
            )
            for conversation_id in ("cnv_fins_alone", "cnv_timed"):
                db.execute(
                    text(
                        "INSERT INTO conversations (id, user_id, status, attributes,"
                        " last_activity_at, created_at, updated_at)"
                        " VALUES (:id, 'usr_a', 'open', '{}', :at, :at, :at)"
                    ),
                    {"id": conversation_id, "at": AT},
                )
            db.execute(
                text(
                    "INSERT INTO sla_timers (conversation_id, target, policy_name,"
                    " target_seconds, started_at, due_at, paused_seconds)"
                    " VALUES ('cnv_timed', 'first_response', 'Default', 1800, :at, :at, 0)"
                ),
                {"at": AT},
            )
        upgrade(url)
        assert schema_drift(url) == []
        assert _flags(url) == {"cnv_fins_alone": False, "cnv_timed": True}

        command.downgrade(alembic_config(url), "0030")
        columns = {c["name"] for c in inspect(engine).get_columns("conversations")}
        assert "sla_timed" not in columns
        upgrade(url)
        assert schema_drift(url) == []
        assert _flags(url) == {"cnv_fins_alone": False, "cnv_timed": True}
    finally:
        engine.dispose()


def test_sqlite_0031_marks_the_conversations_with_timers(tmp_path) -> None:
    _marks_the_timed_ones(f"sqlite:///{tmp_path / 'timed.db'}")


@pytest.mark.postgres
def test_postgres_0031_marks_the_conversations_with_timers(pg_server: PostgresServer) -> None:
    _marks_the_timed_ones(pg_server.create_database("findesk_sla_timed_0031"))
