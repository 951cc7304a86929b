"""The kept queue counts stay exactly what COUNT(*) over the conversations says, whatever moves
them: every action, several in one transaction, a transaction or a savepoint rolled back, an
agent deactivated, and concurrent transactions (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from support.cli import Cli
from support.server import database_url

from findesk.agents import service as agents
from findesk.conversations import counts
from findesk.conversations import service as conversations
from findesk.conversations.repository import ConversationFilter, count
from findesk.conversations.service import Author, NewMessage
from findesk.kit.actor import FIN
from findesk.kit.actor import agent as agent_actor
from findesk.kit.db import Database
from findesk.kit.errors import Problem
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.users.service import create_user

HUMANS = 3
STATUSES = ("open", "resolved", "closed", "ended")


@dataclass
class World:
    db: Database
    fin_id: str
    humans: list[str]
    user_id: str
    conversation_ids: list[str]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    upgrade(url)
    db = Database(url)
    with db.transaction() as session:
        fin_id = agents.ensure_fin_agent(session, "fin@findesk.invalid").id
        humans = [
            agents.create_agent(
                session, email=f"q{i}-{uuid.uuid4().hex[:6]}@example.com", name=f"Q{i}"
            ).id
            for i in range(HUMANS)
        ]
        user_id = create_user(session, object_id=None, name="End User")[0].id
    yield World(db, fin_id, humans, user_id, [])
    db.dispose()


def assert_counts_exact(world: World) -> None:
    """No drift between the kept counts and the table, and the sidebar's four numbers, for
    every agent, are what counting the table says."""
    with world.db.read_session() as session:
        assert counts.drift(session) == {}
        for agent_id in [world.fin_id, *world.humans]:
            assert conversations.queue_counts(session, agent_id) == counted_queues(
                session, agent_id
            )


def counted_queues(session: Session, agent_id: str) -> dict[str, int]:
    """The sidebar as it was counted before the counts were kept: COUNT(*) over the table,
    each queue as it lists its conversations (snoozed ones only in Snoozed and All)."""
    return {
        queue: count(session, ConversationFilter.queue(queue, agent_id, statuses=("open",)))
        for queue in ("waiting", "mine", "fin", "snoozed", "all")
    }


class Rollback(Exception):
    """Raised to roll a transaction (or savepoint) back on purpose."""


class Actions:
    """Random actions, each in its own transaction, as requests make them."""

    def __init__(self, world: World, rng: random.Random, shared: list[str] | None = None) -> None:
        self.world, self.rng = world, rng
        # Given: each transaction changes one of these conversations, as a request does (two
        # in one transaction could wait on each other's row locks, counts or not).
        self.shared = shared
        self.target: str | None = None

    def pick_conversation(self) -> str:
        if self.target is not None:
            return self.target
        return self.rng.choice(self.world.conversation_ids)

    def pick_owner(self) -> str | None:
        return self.rng.choice([None, self.world.fin_id, *self.world.humans])

    def open(self, session: Session) -> None:
        object_id = None
        if self.rng.random() < 0.3:  # sometimes the same key twice: the repeat creates nothing
            object_id = f"conv-{self.rng.randrange(1_000_000 if self.rng.random() < 0.8 else 3)}"
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=self.world.user_id,
            first=NewMessage(Author("end_user", self.world.user_id), "<p>Hello</p>"),
            actor=FIN,
            object_id=object_id,
            assignee_id=self.rng.choice([None, self.world.fin_id, *self.world.humans]),
        )
        self.world.conversation_ids.append(conversation.id)

    def fin_update(self, session: Session) -> None:
        changes: dict[str, object] = {}
        if self.rng.random() < 0.6:
            changes["assignee_id"] = self.rng.choice([None, self.world.fin_id])
        if self.rng.random() < 0.5:
            changes["status"] = self.rng.choice(STATUSES)
        changes["title"] = f"t{self.rng.randrange(1000)}"
        conversations.update_conversation(session, self.pick_conversation(), changes, FIN)

    def human_update(self, session: Session) -> None:
        human = self.rng.choice(self.world.humans)
        changes: dict[str, object] = {"assignee_id": self.pick_owner()}
        if self.rng.random() < 0.5:
            changes["status"] = self.rng.choice(STATUSES)
        conversations.update_conversation(
            session, self.pick_conversation(), changes, agent_actor(human)
        )

    def take_over(self, session: Session) -> None:
        human = self.rng.choice(self.world.humans)
        conversations.take_over(session, self.pick_conversation(), human, agent_actor(human))

    def hand_over(self, session: Session) -> None:
        conversations.hand_over(session, self.pick_conversation(), FIN)

    def hand_back(self, session: Session) -> None:
        human = self.rng.choice(self.world.humans)
        conversations.hand_back_to_fin(session, self.pick_conversation(), agent_actor(human))

    def human_replies(self, session: Session) -> None:
        human = self.rng.choice(self.world.humans)
        conversations.add_message(
            session,
            self.pick_conversation(),
            NewMessage(Author("agent", human), "<p>On it</p>"),
            agent_actor(human),
        )

    def end_user_writes(self, session: Session) -> None:  # reopens a resolved conversation
        conversations.add_message(
            session,
            self.pick_conversation(),
            NewMessage(Author("end_user", self.world.user_id), "<p>Still there?</p>"),
            FIN,
        )

    def snooze(self, session: Session) -> None:
        """Snoozed for a while, woken by an agent, or due already and woken by the waker."""
        human = self.rng.choice(self.world.humans)
        conversation_id = self.pick_conversation()
        choice = self.rng.random()
        if choice < 0.5:
            until = utcnow() + timedelta(minutes=self.rng.randint(1, 600))
            conversations.snooze(session, conversation_id, until, agent_actor(human))
        elif choice < 0.8:
            conversations.snooze(session, conversation_id, None, agent_actor(human))
        else:
            conversations.wake_due(session, utcnow() + timedelta(hours=self.rng.randint(0, 10)))

    def several_in_one_transaction(self, session: Session) -> None:
        for _ in range(self.rng.randint(2, 4)):
            self.rng.choice(self.single)(session)

    def rolled_back(self, session: Session) -> None:
        self.rng.choice(self.single)(session)
        raise Rollback

    def savepoint_rolled_back(self, session: Session) -> None:
        """A change kept, one in a savepoint rolled back, another kept after it."""
        self.rng.choice(self.single)(session)
        try:
            with session.begin_nested():
                self.rng.choice(self.single)(session)
                session.flush()
                raise Rollback
        except Rollback:
            pass
        self.rng.choice(self.single)(session)

    def deactivate_and_reactivate(self, session: Session) -> None:
        human = self.rng.choice(self.world.humans)
        agents.deactivate_agent(session, human)
        # An end user writing to a resolved conversation of the deactivated agent reopens it
        # for nobody: the queue move goes through the same hook.
        self.end_user_writes(session)
        agents.reactivate_agent(session, human)

    @property
    def single(self) -> list[Callable[[Session], None]]:
        return [
            self.open,
            self.fin_update,
            self.human_update,
            self.take_over,
            self.hand_over,
            self.hand_back,
            self.human_replies,
            self.end_user_writes,
            self.snooze,
        ]

    def step(self) -> None:
        choices = [
            *self.single,
            self.several_in_one_transaction,
            self.rolled_back,
            self.savepoint_rolled_back,
        ]
        if self.shared is None:
            # Not among concurrent ones: deactivating locks the agent's row, then each of its
            # conversations in turn, while an assignment to it holds its conversation and
            # waits to check the agent's key; PostgreSQL breaks that cycle, counts or not.
            choices.append(self.deactivate_and_reactivate)
        action = self.rng.choice(choices)
        self.target = self.rng.choice(self.shared) if self.shared else None
        try:
            with self.world.db.transaction() as session:
                action(session)
        except (Rollback, Problem):
            pass  # rolled back: nothing it did may count


def test_random_actions_keep_the_counts_exact(world: World) -> None:
    actions = Actions(world, random.Random(12))
    with world.db.transaction() as session:
        for _ in range(6):
            actions.open(session)
    assert_counts_exact(world)
    for step in range(300):
        actions.step()
        if step % 10 == 0:
            assert_counts_exact(world)
    assert_counts_exact(world)


def test_concurrent_actions_keep_the_counts_exact(world: World) -> None:
    """Threads change the same few conversations at once: on PostgreSQL they wait on each
    other's row locks (never in a circle: a deadlock would fail the step), and the counts end
    exactly right."""
    with world.db.transaction() as session:
        Actions(world, random.Random(1)).open(session)
    shared = world.conversation_ids[-6:]
    failures: list[BaseException] = []

    def run(seed: int) -> None:
        actions = Actions(world, random.Random(seed), shared)
        try:
            for _ in range(40):
                actions.step()
        except BaseException as exc:  # a database error, a deadlock: the test fails
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert_counts_exact(world)


def test_a_transaction_sees_its_own_moves_in_the_counts(world: World) -> None:
    fin = world.fin_id
    with world.db.transaction() as session:
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=world.user_id,
            first=NewMessage(Author("end_user", world.user_id), "<p>Hi</p>"),
            actor=FIN,
            assignee_id=fin,
        )
        before = counted_queues(session, world.humans[0])
        conversations.take_over(
            session, conversation.id, world.humans[0], agent_actor(world.humans[0])
        )
        assert conversations.queue_counts(session, world.humans[0]) == {
            **before,
            "mine": before["mine"] + 1,
            "fin": before["fin"] - 1,
        }
    world.conversation_ids.append(conversation.id)
    assert_counts_exact(world)


def test_recount_repairs_counts_written_around_the_actions(world: World) -> None:
    # A conversation changed by hand, past the actions (an operator's UPDATE): the counts drift.
    with world.db.transaction() as session:
        Actions(world, random.Random(3)).open(session)
    conversation_id = world.conversation_ids[-1]
    with world.db.transaction() as session:
        before = conversations.get_conversation(session, conversation_id)
        key = (before.status, before.assignee_id or "")
        moved_to = ("closed" if before.status != "closed" else "open", key[1])
        session.execute(
            text("UPDATE conversations SET status = :s WHERE id = :id"),
            {"s": moved_to[0], "id": conversation_id},
        )
    with world.db.read_session() as session:
        drift = counts.drift(session)
    assert drift[key][0] == drift[key][1] + 1 and drift[moved_to][0] == drift[moved_to][1] - 1
    with world.db.transaction() as session:
        assert counts.recount(session) == drift
    assert_counts_exact(world)
    with world.db.transaction() as session:
        assert counts.recount(session) == {}


def test_findesk_recount_repairs_the_counts(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    assert cli.json("recount") == {"corrected": []}  # a fresh database: nothing to count
    db = Database(cli.database_url)
    try:
        with db.transaction() as session:
            fin_id = agents.ensure_fin_agent(session, "fin@findesk.invalid").id
            user_id = create_user(session, object_id=None, name="U")[0].id
            for _ in range(3):
                conversations.open_conversation(
                    session,
                    user_id=user_id,
                    first=NewMessage(Author("end_user", user_id), "<p>Hi</p>"),
                    actor=FIN,
                    assignee_id=fin_id,
                )
        with db.transaction() as session:  # counts written by hand
            session.execute(text("UPDATE conversation_counts SET total = total + 2"))
    finally:
        db.dispose()
    assert cli.json("recount") == {
        "corrected": [{"status": "open", "assignee_id": fin_id, "was": 5, "now": 3}]
    }
    result = cli.run("recount")
    assert result.returncode == 0 and "The counts were right." in result.stdout
