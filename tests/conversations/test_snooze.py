"""Snooze: an agent sets a conversation aside until a time; it leaves its queue for "Snoozed",
and comes back when the waker finds it due, when the end user writes, or when an agent wakes
it. Fin hears nothing of it (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.server import database_url
from support.sql import statements_sent

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.repository import ConversationFilter
from findesk.conversations.service import Author, NewMessage
from findesk.conversations.waker import Waker
from findesk.kit.actor import FIN
from findesk.kit.actor import agent as agent_actor
from findesk.kit.db import Database
from findesk.kit.errors import Conflict, Invalid
from findesk.kit.timeutil import as_utc, utcnow
from findesk.migrations import upgrade
from findesk.notifier.models import OutboxEvent
from findesk.users.service import create_user


@dataclass
class World:
    db: Database
    fin_id: str
    human_id: str
    user_id: str

    def waiting_conversation(self) -> str:
        """Opened by Fin and handed over: waiting for a human."""
        with self.db.transaction() as session:
            conversation, _, _ = conversations.open_conversation(
                session,
                user_id=self.user_id,
                first=NewMessage(Author("end_user", self.user_id), "<p>Help</p>"),
                actor=FIN,
                assignee_id=self.fin_id,
            )
            conversations.hand_over(session, conversation.id, FIN)
            return conversation.id

    def snooze(self, conversation_id: str, until: timedelta | None) -> None:
        with self.db.transaction() as session:
            conversations.snooze(
                session,
                conversation_id,
                None if until is None else utcnow() + until,
                agent_actor(self.human_id),
            )

    def queue(self, name: str) -> list[str]:
        f = ConversationFilter.queue(name, self.human_id, statuses=("open",))
        with self.db.read_session() as session:
            return [c.id for c in conversations.list_conversations(session, f, limit=500)]

    def counts(self) -> dict[str, int]:
        with self.db.read_session() as session:
            return conversations.queue_counts(session, self.human_id)

    def events_for_fin(self, conversation_id: str) -> int:
        with self.db.read_session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxEvent)
                    .where(OutboxEvent.conversation_id == conversation_id)
                )
                or 0
            )

    def history_kinds(self, conversation_id: str) -> list[tuple[str, str, dict[str, object]]]:
        with self.db.read_session() as session:
            return [
                (e.kind, e.actor, e.detail)
                for e in history.events(session, conversation_id)
                if e.kind in ("snooze", "wake")
            ]

    def snoozed_until(self, conversation_id: str) -> object:
        with self.db.read_session() as session:
            return conversations.get_conversation(session, conversation_id).snoozed_until


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        fin_id = ensure_fin_agent(session, "fin@findesk.invalid").id
        human_id = create_agent(
            session, email=f"z-{uuid.uuid4().hex[:6]}@example.com", name="Zoe"
        ).id
        user_id = create_user(session, object_id=None, name="Sam")[0].id
    yield World(db, fin_id, human_id, user_id)
    db.dispose()


def test_a_snoozed_conversation_leaves_its_queue_and_fin_is_not_told(world: World) -> None:
    conversation_id = world.waiting_conversation()
    before = world.counts()
    told = world.events_for_fin(conversation_id)

    world.snooze(conversation_id, timedelta(hours=2))

    assert conversation_id not in world.queue("waiting")
    assert conversation_id in world.queue("snoozed")
    assert conversation_id in world.queue("all")
    after = world.counts()
    assert after["waiting"] == before["waiting"] - 1
    assert after["snoozed"] == before["snoozed"] + 1
    assert after["all"] == before["all"]
    assert world.events_for_fin(conversation_id) == told
    assert [k for k, _, _ in world.history_kinds(conversation_id)] == ["snooze"]

    # Woken by the agent: back where it was, and still nothing for Fin.
    world.snooze(conversation_id, None)
    assert conversation_id in world.queue("waiting")
    assert world.counts() == before
    assert world.events_for_fin(conversation_id) == told
    assert world.history_kinds(conversation_id)[-1][:2] == ("wake", "agent")


def test_the_end_user_writing_wakes_it(world: World) -> None:
    conversation_id = world.waiting_conversation()
    world.snooze(conversation_id, timedelta(days=3))
    with world.db.transaction() as session:
        conversations.add_message(
            session,
            conversation_id,
            NewMessage(Author("end_user", world.user_id), "<p>Any news?</p>"),
            FIN,
        )
    assert world.snoozed_until(conversation_id) is None
    assert conversation_id in world.queue("waiting")
    assert world.history_kinds(conversation_id)[-1] == ("wake", "system", {"reason": "end_user"})


def test_an_agents_reply_leaves_it_snoozed(world: World) -> None:
    """Writing "I'll check with the warehouse" and snoozing is the point of a snooze."""
    conversation_id = world.waiting_conversation()
    with world.db.transaction() as session:
        conversations.take_over(
            session, conversation_id, world.human_id, agent_actor(world.human_id)
        )
    world.snooze(conversation_id, timedelta(hours=1))
    with world.db.transaction() as session:
        conversations.add_message(
            session,
            conversation_id,
            NewMessage(Author("agent", world.human_id), "<p>Checking</p>"),
            agent_actor(world.human_id),
        )
    assert world.snoozed_until(conversation_id) is not None
    assert conversation_id not in world.queue("mine")


def test_resolving_or_handing_back_ends_the_snooze(world: World) -> None:
    for end in ("resolve", "hand_back"):
        conversation_id = world.waiting_conversation()
        world.snooze(conversation_id, timedelta(hours=1))
        with world.db.transaction() as session:
            if end == "resolve":
                conversations.update_conversation(
                    session, conversation_id, {"status": "resolved"}, agent_actor(world.human_id)
                )
            else:
                conversations.hand_back_to_fin(
                    session, conversation_id, agent_actor(world.human_id)
                )
        assert world.snoozed_until(conversation_id) is None, end
        assert conversation_id not in world.queue("snoozed"), end


def test_what_cannot_be_snoozed_says_why(world: World) -> None:
    conversation_id = world.waiting_conversation()
    with pytest.raises(Invalid, match="in the future"):
        world.snooze(conversation_id, timedelta(seconds=-1))
    with pytest.raises(Invalid, match="a year at most"):
        world.snooze(conversation_id, timedelta(days=400))
    with world.db.transaction() as session, pytest.raises(Invalid, match="within a year"):
        edge = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
        conversations.snooze(session, conversation_id, edge, agent_actor(world.human_id))
    with world.db.transaction() as session:
        conversations.hand_back_to_fin(session, conversation_id, agent_actor(world.human_id))
    with pytest.raises(Conflict, match="Fin is handling"):
        world.snooze(conversation_id, timedelta(hours=1))
    with world.db.transaction() as session:
        conversations.update_conversation(session, conversation_id, {"status": "closed"}, FIN)
    with pytest.raises(Conflict, match="Only an open conversation"):
        world.snooze(conversation_id, timedelta(hours=1))
    assert world.history_kinds(conversation_id) == []


def test_the_waker_wakes_what_is_due_once(world: World) -> None:
    due, later = world.waiting_conversation(), world.waiting_conversation()
    world.snooze(due, timedelta(minutes=5))
    world.snooze(later, timedelta(hours=5))
    with world.db.transaction() as session:
        woken = conversations.wake_due(session, utcnow() + timedelta(minutes=6))
    assert woken >= 1
    assert world.snoozed_until(due) is None
    assert world.snoozed_until(later) is not None
    assert world.history_kinds(due)[-1] == ("wake", "system", {"reason": "time"})
    with world.db.transaction() as session:  # nothing twice
        conversations.wake_due(session, utcnow() + timedelta(minutes=6))
    assert [k for k, _, _ in world.history_kinds(due)] == ["snooze", "wake"]


def test_the_waker_loop_wakes_a_conversation_when_its_time_comes(world: World) -> None:
    """Running as findesk serve runs it: a snooze committed in this process wakes the loop,
    which then sleeps until that snooze ends (not its 60 s check), and wakes it on time."""
    waker = Waker(world.db, check_seconds=60)
    loop = asyncio.new_event_loop()
    task = loop.create_task(waker.run())
    thread = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    thread.start()
    try:
        conversation_id = world.waiting_conversation()
        world.snooze(conversation_id, timedelta(seconds=1.5))
        until = world.snoozed_until(conversation_id)
        assert until is not None
        deadline = time.monotonic() + 15
        while world.snoozed_until(conversation_id) is not None:
            assert time.monotonic() < deadline, "the waker did not wake it"
            time.sleep(0.05)
        assert utcnow() >= as_utc(until)  # not before its time
        assert conversation_id in world.queue("waiting")
    finally:
        loop.call_soon_threadsafe(waker.stop)
        thread.join(timeout=10)
        loop.close()


def test_sqlite_finds_the_snoozed_on_their_partial_index(tmp_path: Path) -> None:
    """SQLite has no statistics: without being told the snoozed are few, its planner read every
    open conversation (off the status index) for the sidebar's counts and the Snoozed queue."""
    url = f"sqlite:///{tmp_path}/plans.db"
    upgrade(url)
    db = Database(url)
    try:
        snoozed = ConversationFilter.queue("snoozed", "agt_x", statuses=("open",))
        with statements_sent(db.engine) as sent, db.read_session() as session:
            conversations.queue_counts(session, "agt_x")
            conversations.list_conversations(session, snoozed, limit=26)
        statements = [(s, p) for s, p in sent if "snoozed_until" in s and "FROM conversations" in s]
        assert len(statements) == 2
        with db.engine.connect() as connection:
            for statement, params in statements:
                plan = " / ".join(
                    str(row[3])
                    for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                )
                assert "USING INDEX ix_conversations_snoozed_until" in plan, plan
                assert "ix_conversations_status" not in plan, plan
    finally:
        db.dispose()
