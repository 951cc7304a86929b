"""The hot queries' plans on PostgreSQL: each reads conversations and messages through an index
(never a sequential scan of the table), in the order its page needs (never a sort of every row
of a queue), so that their cost stays flat however many rows there are; the sidebar's counts
never read the conversations at all.

The statements checked are the ones findesk sends (captured from the domain functions as they
run), on a database of a few thousand conversations and tens of thousands of messages shaped as
a live one (most conversations closed and old, the open ones recent, queues of every kind),
analysed and vacuumed so that the planner works from real statistics. At that size a sequential
scan already costs more than these plans, so a plan that needs one is a missing index, not a
small table. ``bench/pg_size.py`` measures the same queries at 10,000,000 messages.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session
from support.postgres import PostgresServer
from support.sql import statements_sent

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.conversations import counts, history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationRead,
    ConversationTag,
    Message,
)
from findesk.conversations.repository import ConversationFilter
from findesk.kit import ids
from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.notifier import repository as outbox
from findesk.notifier.models import OutboxEvent
from findesk.users.models import EndUser

pytestmark = pytest.mark.postgres

CONVERSATIONS = 6_000
MESSAGES_EACH = 8  # on average
LONG = 2_000  # one conversation has this many
# Which: one of middle age, so that most messages came after its last one (Fin fetching a
# conversation that had long been quiet): read by the seq of all messages, that is half the table.
LONG_AT = CONVERSATIONS // 2
HUMANS = 6
PAGE = 26  # the inbox's 25 and one to know whether there is more


@dataclass
class Seeded:
    db: Database
    fin_id: str
    humans: list[str]
    conversation_id: str  # an ordinary one
    long_id: str
    long_after_id: str  # its last-but-one message
    snoozed: list[str]  # open, set aside by a person: a few, as in a real inbox


def _seed(db: Database) -> Seeded:
    rng = random.Random(5)
    with db.transaction() as session:
        fin_id = ensure_fin_agent(session, "fin@findesk.invalid").id
        humans = [
            create_agent(session, email=f"p{n}@example.com", name=f"P{n}").id for n in range(HUMANS)
        ]
    now = utcnow()
    users = [{"id": ids.new_id(ids.USER), "name": f"U{n}", "attributes": {}} for n in range(1_000)]
    conversation_rows: list[dict[str, Any]] = []
    message_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    outbox_rows: list[dict[str, Any]] = []
    snoozed: list[str] = []
    for n in range(CONVERSATIONS):
        age = timedelta(days=365 * (1 - n / CONVERSATIONS))  # oldest first
        recent = n > CONVERSATIONS * 0.9
        is_open = rng.random() < (0.8 if recent else 0.05)
        roll = rng.random()
        assignee = fin_id if roll < 0.5 else None if roll < 0.7 else rng.choice(humans)
        created = now - age
        last = created + timedelta(minutes=rng.randint(1, 600))
        conversation_id = ids.new_id(ids.CONVERSATION)
        user = rng.choice(users)["id"]
        snoozed_until = None
        if is_open and assignee != fin_id and rng.random() < 0.05:
            snoozed_until = now + timedelta(hours=rng.randint(-2, 48))  # some due already
            snoozed.append(conversation_id)
        conversation_rows.append(
            {
                "id": conversation_id,
                "user_id": user,
                "status": "open" if is_open else rng.choice(("resolved", "closed")),
                "attributes": {},
                "assignee_id": assignee,
                "last_activity_at": last,
                "created_at": created,
                "updated_at": last,
                "snoozed_until": snoozed_until,
            }
        )
        length = LONG if n == LONG_AT else rng.randint(1, 2 * MESSAGES_EACH - 1)
        for m in range(length):
            message_rows.append(
                {
                    "id": ids.new_id(ids.MESSAGE),
                    "conversation_id": conversation_id,
                    "body": f"<p>Message {m}</p>",
                    "author_type": "end_user",
                    "author_user_id": user,
                    "visibility": "public",
                    "attachments": [],
                    "created_at": created + timedelta(seconds=m),
                }
            )
        event_rows.append(
            {
                "conversation_id": conversation_id,
                "kind": "created",
                "actor": "fin",
                "to_value": {"assignee_id": fin_id, "status": "open"},
                "detail": {},
                "at": created,
            }
        )
        if n % 4 == 0:
            tag_rows.append({"conversation_id": conversation_id, "tag": "order", "position": 0})
        outbox_rows.append(
            {
                "conversation_id": conversation_id,
                "reason": "message",
                "state": "delivered" if n < CONVERSATIONS - 20 else "pending",
                "attempts": 1,
                "created_at": last,
                "next_attempt_at": last,
                "delivered_at": last if n < CONVERSATIONS - 20 else None,
            }
        )
    # Messages arrive interleaved across conversations, as they do live.
    message_rows.sort(key=lambda row: row["created_at"])
    with db.transaction() as session:
        for model, rows in (
            (EndUser, users),
            (Conversation, conversation_rows),
            (Message, message_rows),
            (ConversationEvent, event_rows),
            (ConversationTag, tag_rows),
            (OutboxEvent, outbox_rows),
        ):
            for start in range(0, len(rows), 5_000):
                session.execute(insert(model), rows[start : start + 5_000])
        counts.recount(session)
    long_id = conversation_rows[LONG_AT]["id"]
    long_messages = [row["id"] for row in message_rows if row["conversation_id"] == long_id]
    _seed_reads(db, rng, humans, long_id)
    settle(db)
    return Seeded(
        db,
        fin_id,
        humans,
        conversation_rows[CONVERSATIONS - 100]["id"],
        long_id,
        long_messages[-2],
        snoozed,
    )


def _seed_reads(db: Database, rng: random.Random, humans: list[str], long_id: str) -> None:
    """How far each human has read: about half of the conversations each, most of them to the
    end; the first human, the long conversation to its last-but-one message."""
    with db.transaction() as session:
        newest = session.execute(
            select(Message.conversation_id, func.max(Message.seq)).group_by(Message.conversation_id)
        ).all()
        rows = [
            {
                "agent_id": agent_id,
                "conversation_id": conversation_id,
                "read_seq": seq - (1 if rng.random() < 0.2 else 0),
                "read_at": utcnow(),
            }
            for conversation_id, seq in newest
            for agent_id in humans
            if rng.random() < 0.5 and conversation_id != long_id
        ]
        long_seq = next(seq for conversation_id, seq in newest if conversation_id == long_id)
        rows.append(
            {
                "agent_id": humans[0],
                "conversation_id": long_id,
                "read_seq": long_seq - 1,
                "read_at": utcnow(),
            }
        )
        for start in range(0, len(rows), 5_000):
            session.execute(insert(ConversationRead), rows[start : start + 5_000])


def settle(db: Database) -> None:
    """Statistics, and the visibility map that index-only scans rely on, as autovacuum would
    leave them. VACUUM may leave pages it could have marked (the test cluster commits
    asynchronously, and VACUUM must know the rows' commits are flushed): again until they are.
    """
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.execute(text("ANALYZE"))
        for _ in range(20):
            connection.execute(text("CHECKPOINT"))
            connection.execute(text("VACUUM"))
            pages, visible = connection.execute(
                text("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'messages'")
            ).one()
            if visible >= pages * 0.9:
                return
            time.sleep(0.2)
    raise AssertionError(f"VACUUM left {visible} of {pages} pages of messages visible to all")


@pytest.fixture(scope="module")
def seeded(pg_server: PostgresServer) -> Iterator[Seeded]:
    url = pg_server.create_database("findesk_query_plans")
    upgrade(url)
    db = Database(url)
    yield _seed(db)
    db.dispose()


@dataclass(frozen=True)
class Scan:
    """A node of a plan that reads a table."""

    node: str  # Seq Scan, Index Scan, Index Only Scan, Bitmap Heap Scan
    relation: str
    index: str | None  # for a bitmap heap scan: the index of the bitmap under it
    condition: str  # what bounds the index range (Index Cond), "" if nothing


@dataclass
class Plan:
    statement: str
    root: dict[str, Any]

    def nodes(self) -> Iterator[dict[str, Any]]:
        todo = [self.root]
        while todo:
            node = todo.pop()
            yield node
            todo.extend(node.get("Plans", []))

    def scans(self, relation: str) -> list[Scan]:
        found = []
        for node in self.nodes():
            if node.get("Relation Name") != relation:
                continue
            source = node
            if node["Node Type"] == "Bitmap Heap Scan":
                source = next(n for n in Plan("", node).nodes() if n.get("Index Name"))
            found.append(
                Scan(
                    node["Node Type"],
                    relation,
                    source.get("Index Name"),
                    source.get("Index Cond", ""),
                )
            )
        return found

    def sorted_scans(self, relation: str) -> list[Scan]:
        """The reads of ``relation`` under a full Sort: every row they return is sorted before
        the first one comes out (an Incremental Sort, of rows read in index order, only sorts
        ties, and stops with the Limit above it)."""
        return [
            scan
            for node in self.nodes()
            if node["Node Type"] == "Sort"
            for scan in Plan("", node).scans(relation)
        ]

    def __str__(self) -> str:
        lines = [" ".join(self.statement.split())[:300]]

        def walk(node: dict[str, Any], depth: int) -> None:
            parts = [node["Node Type"]]
            for key in ("Scan Direction", "Index Name", "Relation Name", "Plan Rows"):
                if key in node:
                    parts.append(f"{key.split()[0].lower()}={node[key]}")
            for key in ("Index Cond", "Filter", "Sort Key", "Presorted Key"):
                if key in node:
                    parts.append(f"{key}: {str(node[key])[:160]}")
            lines.append("  " * depth + " ".join(parts))
            for child in node.get("Plans", []):
                walk(child, depth + 1)

        walk(self.root, 1)
        return "\n".join(lines)

    __repr__ = __str__


def plans_of(db: Database, call: Callable[[Session], object]) -> list[Plan]:
    """Run ``call`` in a read session, capturing its SELECT statements; then each one's plan
    (EXPLAIN, FORMAT JSON), with the parameters it was sent with."""
    with statements_sent(db.engine) as sent, db.read_session() as session:
        call(session)
    captured = [(s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT")]
    assert captured, "the call sent no SELECT"
    plans = []
    with db.engine.connect() as connection:
        for statement, params in captured:
            row = connection.exec_driver_sql(
                "EXPLAIN (FORMAT JSON) " + statement, params
            ).scalar_one()
            plans.append(Plan(statement, row[0]["Plan"]))
    return plans


def assert_indexed(plans: list[Plan], relation: str, indexes: set[str]) -> None:
    """Every read of ``relation`` goes through one of ``indexes``; at least one does."""
    scans = [scan for plan in plans for scan in plan.scans(relation)]
    assert scans, f"no read of {relation} in:\n" + "\n".join(map(str, plans))
    for plan in plans:
        for scan in plan.scans(relation):
            assert scan.node != "Seq Scan" and scan.index in indexes, f"{scan}\n{plan}"


def assert_never_reads(plans: list[Plan], relation: str) -> None:
    for plan in plans:
        assert not plan.scans(relation), str(plan)


def test_get_conversation_reads_it_by_its_key(seeded: Seeded) -> None:
    plans = plans_of(
        seeded.db,
        lambda s: conversations.get_conversation(s, seeded.conversation_id).tags,
    )
    assert_indexed(plans, "conversations", {"pk_conversations"})
    assert_indexed(plans, "conversation_tags", {"pk_conversation_tags"})


def test_get_messages_after_id_reads_only_the_later_messages(seeded: Seeded) -> None:
    def read(session: Session) -> None:
        wire = conversations.messages_for_wire(
            session, seeded.long_id, after_id=seeded.long_after_id
        )
        assert sum(len(chunk) for chunk in wire.chunks) == 1

    plans = plans_of(seeded.db, read)
    assert_indexed(plans, "messages", {"uq_messages_id", "ix_messages_conversation_seq"})
    assert_indexed(plans, "conversations", {"pk_conversations"})
    # The range itself bounds the index scan: the earlier messages are never read.
    ranges = [scan for plan in plans for scan in plan.scans("messages")]
    assert any(
        scan.index == "ix_messages_conversation_seq"
        and "conversation_id" in scan.condition
        and "seq >" in scan.condition
        for scan in ranges
    ), ranges


@pytest.mark.parametrize("older", [False, True])
def test_a_page_of_the_thread_reads_its_messages_off_the_conversations_index(
    seeded: Seeded, older: bool
) -> None:
    """The newest page, or the one before a message: the page's messages found on the
    (conversation_id, seq) index read backwards from there, then fetched by key; never the
    table's later messages, whatever share of them this conversation has."""
    before = seeded.long_after_id if older else None
    plans = plans_of(
        seeded.db,
        lambda s: conversations.message_page(s, seeded.long_id, limit=50, before=before),
    )
    scans = [scan for plan in plans for scan in plan.scans("messages")]
    assert any(
        scan.index == "ix_messages_conversation_seq" and "conversation_id" in scan.condition
        for scan in scans
    ), "\n".join(map(str, plans))
    for scan in scans:
        by_key = scan.index in ("pk_messages", "uq_messages_id") and " = " in scan.condition
        assert scan.index == "ix_messages_conversation_seq" or by_key, "\n".join(map(str, plans))


QUEUE_INDEXES = {
    "ix_conversations_activity",
    "ix_conversations_status_activity",
    "ix_conversations_status_assignee_activity",
}


@pytest.mark.parametrize("queue", ["waiting", "mine", "fin", "all"])
@pytest.mark.parametrize("status", ["open", "closed"])
def test_queue_pages_read_the_queue_in_order_from_an_index(
    seeded: Seeded, queue: str, status: str
) -> None:
    """A page reads the queue's rows newest first off an index and stops at the page's end;
    or, when the planner expects the queue to be short, the queue's rows alone, found by the
    index on status and owner, and sorts them: never rows outside the queue."""
    f = ConversationFilter.queue(queue, seeded.humans[0], statuses=(status,))
    first = conversations.list_conversations
    with seeded.db.read_session() as session:
        rows = first(session, f, limit=PAGE)
    assert rows, f"the {queue} queue is empty: the seed must fill every queue"
    before = (rows[-1].last_activity_at, rows[-1].id)
    for page in (None, before):
        plans = plans_of(seeded.db, lambda s, page=page: first(s, f, limit=PAGE, before=page))
        assert_indexed(plans, "conversations", QUEUE_INDEXES)
        bounded = ("status", "assignee_id") if queue in ("waiting", "mine") else ("status",)
        for plan in plans:
            if page is not None:  # a later page starts where the one before ended
                for scan in plan.scans("conversations"):
                    assert "last_activity_at" in scan.condition, plan
            for scan in plan.sorted_scans("conversations"):
                assert all(column in scan.condition for column in bounded), plan
                assert queue != "all", f"the whole {status} queue sorted for a page:\n{plan}"


def test_queue_rows_find_their_newest_message_without_reading_the_conversation(
    seeded: Seeded,
) -> None:
    """A queue row's preview: each conversation's newest message found at the end of its
    (conversation_id, seq) range, then fetched by key; the long conversation's 2,000 messages
    are never read one by one."""
    ids = [seeded.long_id, seeded.conversation_id]
    with seeded.db.read_session() as session:
        found = conversations.latest_messages(session, ids)
    assert set(found) == set(ids)
    plans = plans_of(seeded.db, lambda s: conversations.latest_messages(s, ids))
    assert_indexed(plans, "messages", {"ix_messages_conversation_seq", "pk_messages"})
    assert_indexed(plans, "conversations", {"pk_conversations"})
    for plan in plans:
        # max(seq) of one conversation is the end of its index range (a Limit 1 read
        # backwards), not an aggregate over every message it has.
        for node in plan.nodes():
            if node["Node Type"] == "Aggregate":
                assert not Plan("", node).scans("messages"), plan


def test_queue_rows_know_which_are_unread_from_the_indexes(seeded: Seeded) -> None:
    """A page's unread markers, in one query: each row's read state by its key, then the
    conversation's (conversation_id, seq) range after it; never the messages before it (the
    long conversation's 2,000, read to its last but one), nor any other conversation's."""
    agent_id = seeded.humans[0]
    f = ConversationFilter(owner="any", agent_id=agent_id, statuses=("open",))
    with seeded.db.read_session() as session:
        page = [c.id for c in conversations.list_conversations(session, f, limit=PAGE)]
        ids = [*page, seeded.long_id]
        unread = conversations.unread_among(session, agent_id, ids)
    assert seeded.long_id in unread
    assert unread < set(ids), "the seed must leave some of the page read"
    plans = plans_of(seeded.db, lambda s: conversations.unread_among(s, agent_id, ids))
    assert len(plans) == 1
    assert_indexed(plans, "conversations", {"pk_conversations"})
    assert_indexed(plans, "conversation_reads", {"pk_conversation_reads"})
    assert_indexed(plans, "messages", {"ix_messages_conversation_seq"})
    for scan in plans[0].scans("messages"):
        assert "conversation_id" in scan.condition and "seq >" in scan.condition, plans[0]


def assert_only_snoozed_read(plans: list[Plan]) -> None:
    """Every plan that reads conversations finds them on the partial index of the snoozed
    ones (alone, or ANDed with another index's bitmap): never a scan of a whole queue."""
    reading = [plan for plan in plans if plan.scans("conversations")]
    assert reading, "no read of conversations in:\n" + "\n".join(map(str, plans))
    for plan in reading:
        assert all(scan.node != "Seq Scan" for scan in plan.scans("conversations")), plan
        names = {node.get("Index Name") for node in plan.nodes()}
        assert "ix_conversations_snoozed_until" in names, plan


def test_queue_counts_read_only_the_snoozed_conversations(seeded: Seeded) -> None:
    """The kept counts, less the snoozed conversations found on their partial index: never
    the rest of the table."""
    plans = plans_of(seeded.db, lambda s: conversations.queue_counts(s, seeded.humans[0]))
    assert any(plan.scans("conversation_counts") for plan in plans)
    assert_only_snoozed_read(plans)


def test_the_snoozed_queue_and_the_waker_read_the_snoozed_conversations_only(
    seeded: Seeded,
) -> None:
    f = ConversationFilter.queue("snoozed", seeded.humans[0], statuses=("open",))
    with seeded.db.read_session() as session:
        snoozed = conversations.list_conversations(session, f, limit=PAGE)
    assert {c.id for c in snoozed} == set(seeded.snoozed)
    for call in (
        lambda s: conversations.list_conversations(s, f, limit=PAGE),
        lambda s: conversations.next_wake_at(s),
        lambda s: conversation_repository.due_to_wake(s, utcnow(), 100),
    ):
        assert_only_snoozed_read(plans_of(seeded.db, call))


def test_the_history_of_a_conversation_reads_its_rows_by_index(seeded: Seeded) -> None:
    plans = plans_of(seeded.db, lambda s: history.events(s, seeded.conversation_id))
    assert_indexed(plans, "conversation_history", {"ix_conversation_history_conversation"})


def test_the_outbox_claims_due_events_from_its_index(seeded: Seeded) -> None:
    now = utcnow()

    def claim(session: Session) -> None:
        outbox.claim(
            session,
            owner="plans",
            now=now,
            lease_until=now + timedelta(seconds=30),
            conversations=10,
            skip_locked=False,
        )
        session.rollback()

    plans = plans_of(seeded.db, claim)
    assert_indexed(
        plans,
        "outbox_events",
        {"ix_outbox_events_state_due", "ix_outbox_events_conversation_due", "pk_outbox_events"},
    )
