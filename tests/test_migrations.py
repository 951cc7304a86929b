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
from findesk.search.models import include_name


def schema_drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            opts = {"compare_type": True, "include_name": include_name}
            context = MigrationContext.configure(connection, opts=opts)
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


def _fill_0006(url: str) -> None:
    """A database as findesk 0006 left it: a conversation Fin handed over (the live feed still
    remembers when), one a human took over by replying, one Fin still handles."""
    from datetime import UTC, datetime, timedelta

    from alembic import command

    from findesk.migrations import alembic_config

    command.upgrade(alembic_config(url), "0006")
    sqlite = url.startswith("sqlite")
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        value = base + timedelta(minutes=minutes)
        return value.replace(tzinfo=None) if sqlite else value

    engine = create_engine(url)
    with engine.begin() as db:
        for agent_id, is_bot in (("agt_fin", True), ("agt_alex", False)):
            db.execute(
                text(
                    "INSERT INTO agents (id, email, name, is_bot, role, active, created_at,"
                    " updated_at) VALUES (:id, :email, :id, :bot, 'agent', :t, :c, :c)"
                ),
                {
                    "id": agent_id,
                    "email": f"{agent_id}@x.test",
                    "bot": is_bot,
                    "t": True,
                    "c": at(0),
                },
            )
        db.execute(
            text(
                "INSERT INTO end_users (id, attributes, created_at, updated_at)"
                " VALUES ('usr_1', '{}', :c, :c)"
            ),
            {"c": at(0)},
        )
        for cid, assignee, updated in (
            ("conv_waiting", None, 30),
            ("conv_human", "agt_alex", 40),
            ("conv_fin", "agt_fin", 50),
        ):
            db.execute(
                text(
                    "INSERT INTO conversations (id, user_id, status, attributes, assignee_id,"
                    " last_activity_at, created_at, updated_at)"
                    " VALUES (:id, 'usr_1', 'open', '{}', :a, :u, :c, :u)"
                ),
                {"id": cid, "a": assignee, "u": at(updated), "c": at(1)},
            )
        for mid, cid, agent, visibility, minute in (
            ("msg_note", "conv_fin", "agt_alex", "private", 5),
            ("msg_reply", "conv_human", "agt_alex", "public", 12),
            ("msg_later", "conv_human", "agt_alex", "public", 20),
            ("msg_fin", "conv_human", "agt_fin", "public", 3),
        ):
            db.execute(
                text(
                    "INSERT INTO messages (id, conversation_id, message_type, body, author_type,"
                    " author_agent_id, visibility, attachments, created_at)"
                    " VALUES (:id, :cid, 'comment', '<p>x</p>', 'agent', :agent, :v, '[]', :c)"
                ),
                {"id": mid, "cid": cid, "agent": agent, "v": visibility, "c": at(minute)},
            )
        db.execute(
            text(
                "INSERT INTO activity (conversation_id, kind, owner, actor, at)"
                " VALUES ('conv_waiting', 'assignee', 'waiting', 'fin', :t)"
            ),
            {"t": at(7)},
        )
    engine.dispose()


def _check_filled(url: str) -> None:
    from findesk.conversations import counts, history
    from findesk.conversations.models import Conversation
    from findesk.conversations.repository import kept_counts

    upgrade(url)
    db = Database(url)
    try:
        with db.read_session() as session:
            waiting = session.get(Conversation, "conv_waiting")
            human = session.get(Conversation, "conv_human")
            fin = session.get(Conversation, "conv_fin")
            assert waiting and human and fin
            # From the live feed where it remembers; from the first human reply otherwise.
            assert waiting.handed_over_at is not None and waiting.handed_over_at.minute == 7
            assert human.first_human_reply_at is not None
            assert human.first_human_reply_at.minute == 12  # not Fin's, not the later reply
            assert human.taken_over_at == human.first_human_reply_at
            assert fin.first_human_reply_at is None  # a private note is no reply
            assert fin.handed_over_at is None and fin.taken_over_at is None
            for conversation in (waiting, human, fin):
                events = history.events(session, conversation.id)
                assert [e.kind for e in events] == ["created"]
                assert events[0].detail == {"backfilled": True}
                assert history.owner_after(events) == conversation.assignee_id
            # The queue counts start from the table as it was.
            assert counts.drift(session) == {}
            assert kept_counts(session) == {
                ("open", ""): 1,
                ("open", "agt_alex"): 1,
                ("open", "agt_fin"): 1,
            }
    finally:
        db.dispose()


def test_sqlite_upgrade_fills_the_ownership_columns_and_starts_the_history(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _fill_0006(url)
    _check_filled(url)


@pytest.mark.postgres
def test_postgres_upgrade_fills_the_ownership_columns_and_starts_the_history(
    pg_server: PostgresServer,
) -> None:
    url = pg_server.create_database("findesk_fill_0006")
    _fill_0006(url)
    _check_filled(url)


def _down_to_0015_and_up_again(url: str) -> None:
    """0016 (the agents' read state) comes off cleanly and goes on again, on a database with
    data: the conversations and messages stay, only the read rows go."""
    from alembic import command
    from sqlalchemy import inspect

    from findesk.migrations import alembic_config

    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO agents (id, email, name, is_bot, role, active, created_at,"
                    " updated_at) VALUES ('agt_r', 'r@x.test', 'R', :f, 'agent', :t, :c, :c)"
                ),
                {"f": False, "t": True, "c": "2026-12-05 09:00:00"},
            )
            db.execute(
                text(
                    "INSERT INTO end_users (id, attributes, created_at, updated_at)"
                    " VALUES ('usr_r', '{}', :c, :c)"
                ),
                {"c": "2026-12-05 09:00:00"},
            )
            db.execute(
                text(
                    "INSERT INTO conversations (id, user_id, status, attributes,"
                    " last_activity_at, created_at, updated_at)"
                    " VALUES ('conv_r', 'usr_r', 'open', '{}', :c, :c, :c)"
                ),
                {"c": "2026-12-05 09:00:00"},
            )
            db.execute(
                text(
                    "INSERT INTO conversation_reads (agent_id, conversation_id, read_seq, read_at)"
                    " VALUES ('agt_r', 'conv_r', 7, :c)"
                ),
                {"c": "2026-12-05 09:00:00"},
            )
        command.downgrade(alembic_config(url), "0015")
        assert "conversation_reads" not in inspect(engine).get_table_names()
        with engine.connect() as db:
            assert db.execute(text("SELECT id FROM conversations")).scalars().all() == ["conv_r"]
        upgrade(url)
        assert schema_drift(url) == []
        with engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM conversation_reads")).scalar() == 0
    finally:
        engine.dispose()


def test_sqlite_0016_goes_down_and_up_again(tmp_path) -> None:
    _down_to_0015_and_up_again(f"sqlite:///{tmp_path / 'reads.db'}")


@pytest.mark.postgres
def test_postgres_0016_goes_down_and_up_again(pg_server: PostgresServer) -> None:
    _down_to_0015_and_up_again(pg_server.create_database("findesk_reads_0016"))


def _down_to_0016_and_up_again(url: str) -> None:
    """0017 (end-user aliases, the index on end users' names) comes off cleanly and goes on
    again, on a database with data: the end users stay, only the aliases go; on SQLite the
    full-text search triggers of 0014 are still there (no table was rebuilt)."""
    from alembic import command
    from sqlalchemy import inspect

    from findesk.migrations import alembic_config

    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO end_users (id, name, email, attributes, created_at, updated_at)"
                    " VALUES ('usr_a', 'Ada', 'ada@x.test', '{}', :c, :c)"
                ),
                {"c": "2026-12-05 09:00:00"},
            )
            db.execute(
                text(
                    "INSERT INTO end_user_aliases (kind, alias, user_id, merged_at)"
                    " VALUES ('id', 'usr_gone', 'usr_a', :c)"
                ),
                {"c": "2026-12-05 09:00:00"},
            )
        command.downgrade(alembic_config(url), "0016")
        inspector = inspect(engine)
        assert "end_user_aliases" not in inspector.get_table_names()
        assert "ix_end_users_name" not in {i["name"] for i in inspector.get_indexes("end_users")}
        upgrade(url)
        assert schema_drift(url) == []
        with engine.connect() as db:
            assert db.execute(text("SELECT id FROM end_users")).scalars().all() == ["usr_a"]
            assert db.execute(text("SELECT count(*) FROM end_user_aliases")).scalar() == 0
            if engine.dialect.name == "sqlite":
                triggers = db.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                ).scalars()
                assert "search_heads_user_change" in set(triggers)
    finally:
        engine.dispose()


def test_sqlite_0017_goes_down_and_up_again(tmp_path) -> None:
    _down_to_0016_and_up_again(f"sqlite:///{tmp_path / 'aliases.db'}")


@pytest.mark.postgres
def test_postgres_0017_goes_down_and_up_again(pg_server: PostgresServer) -> None:
    _down_to_0016_and_up_again(pg_server.create_database("findesk_aliases_0017"))
