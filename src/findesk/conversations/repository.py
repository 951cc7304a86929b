"""All conversation and message SQL."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    SQLColumnExpression,
    Text,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from findesk.agents.models import Agent
from findesk.conversations.models import (
    Conversation,
    ConversationCount,
    ConversationEvent,
    ConversationRead,
    ConversationTag,
    Message,
)
from findesk.users.models import EndUser

AnySelect = TypeVar("AnySelect", bound=Select[Any])


class rare(FunctionElement[bool]):
    """A condition few rows meet. SQLite's planner, which has no statistics, is told so
    (``likelihood``), and then reads a partial index of those rows rather than a whole
    status's; PostgreSQL's statistics know it already."""

    # Untyped: typed Boolean, SQLite would be sent "likelihood(…) = 1", which no index matches.
    inherit_cache = True


@compiles(rare)
def _rare(element: rare, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(rare, "sqlite")
def _rare_sqlite(element: rare, compiler: SQLCompiler, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.clauses, **kw)}, 0.001)"


# The snoozed conversations (few: see ``rare``), as the partial index of migration 0015 holds.
SNOOZED = rare(Conversation.snoozed_until.is_not(None))


def get(session: Session, conversation_id: str) -> Conversation | None:
    return session.get(Conversation, conversation_id)


def conversation_exists(session: Session, conversation_id: str) -> bool:
    return (
        session.scalar(select(Conversation.id).where(Conversation.id == conversation_id))
        is not None
    )


def channel_of(session: Session, conversation_id: str) -> str | None:
    """The conversation's channel (``messenger``, ``chat``; None: no such conversation), from
    the session's identity map when the conversation is loaded already."""
    loaded = session.identity_map.get(session.identity_key(Conversation, conversation_id))
    if isinstance(loaded, Conversation):
        return loaded.channel
    return session.scalar(select(Conversation.channel).where(Conversation.id == conversation_id))


def get_for_update(session: Session, conversation_id: str) -> Conversation | None:
    """The conversation, its row locked (PostgreSQL) so that concurrent changes of one
    conversation serialise, read after the lock is held.

    Locking and loading are two statements on purpose: a ``SELECT … FOR UPDATE`` that joins the
    assignee would, after waiting for a concurrent take-over, return the conversation's new
    row joined to its old assignee (PostgreSQL rechecks only the locked row), and the take-over
    rule would judge a stale owner.
    """
    parameters = {"conversation_id": conversation_id}
    if session.get_bind().dialect.name != "sqlite":  # (SQLite: the write transaction is the lock)
        if session.scalar(_LOCK_CONVERSATION, parameters) is None:
            return None
    return session.scalars(_CONVERSATION_FOR_CHANGE, parameters).one_or_none()


_LOCK_CONVERSATION = (
    select(Conversation.id).where(Conversation.id == bindparam("conversation_id")).with_for_update()
)
# Read again even if this session holds it already, and its tags when asked for only: most
# changes (a new message) never look at them.
_CONVERSATION_FOR_CHANGE = (
    select(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .options(lazyload(Conversation.tag_rows))
    .execution_options(populate_existing=True)
)


def get_by_object_id(session: Session, object_id: str) -> Conversation | None:
    return session.scalars(select(Conversation).where(Conversation.object_id == object_id)).first()


def open_ids_of_user(session: Session, user_id: str) -> Sequence[str]:
    return session.scalars(
        select(Conversation.id).where(
            Conversation.user_id == user_id, Conversation.status == "open"
        )
    ).all()


def of_user_for_update(session: Session, user_id: str) -> Sequence[Conversation]:
    """Every conversation of the end user, whatever its status, locked (a merge moves them)."""
    return session.scalars(
        select(Conversation)
        .where(Conversation.user_id == user_id)
        .order_by(Conversation.created_at, Conversation.id)
        .with_for_update(of=Conversation)
    ).all()


def move_authored_messages(session: Session, from_user_id: str, to_user_id: str) -> int:
    """Messages the end user wrote now name another end user as their author (a merge)."""
    result = session.execute(
        update(Message)
        .where(Message.author_user_id == from_user_id)
        .values(author_user_id=to_user_id)
        .execution_options(synchronize_session="fetch")
    )
    # Those already loaded: their author is read again when next used.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Message) and obj.author_user_id == to_user_id:
            session.expire(obj, ["author_user"])
    return int(getattr(result, "rowcount", 0) or 0)


def replace_tags(session: Session, conversation: Conversation, tags: list[str]) -> None:
    session.execute(
        delete(ConversationTag).where(ConversationTag.conversation_id == conversation.id)
    )
    session.expire(conversation, ["tag_rows"])
    for position, tag in enumerate(tags):
        session.add(ConversationTag(conversation_id=conversation.id, tag=tag, position=position))
    session.flush()
    session.refresh(conversation, ["tag_rows"])


def get_message(session: Session, message_id: str) -> Message | None:
    return session.scalars(select(Message).where(Message.id == message_id)).first()


_MESSAGE_SEQ_BY_OBJECT_ID = select(Message.seq).where(Message.object_id == bindparam("object_id"))


def get_message_by_object_id(session: Session, object_id: str) -> Message | None:
    # Asked before every message Fin writes, and nearly always answered "none": a plain
    # column, and the ORM only for the rare message that exists.
    seq = session.scalar(_MESSAGE_SEQ_BY_OBJECT_ID, {"object_id": object_id})
    return None if seq is None else session.get(Message, seq)


def first_message(session: Session, conversation_id: str) -> Message | None:
    return session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.seq)
        .limit(1)
    ).first()


def messages(
    session: Session,
    conversation_id: str,
    *,
    after_id: str | None = None,
    public_only: bool = False,
    limit: int | None = None,
) -> Sequence[Message]:
    """Messages in creation order; with a known ``after_id``, only the later ones."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if after_id is not None:
        after_seq = session.scalar(
            select(Message.seq).where(
                Message.id == after_id, Message.conversation_id == conversation_id
            )
        )
        if after_seq is not None:
            query = query.where(Message.seq > after_seq)
    if public_only:
        query = query.where(Message.visibility == "public")
    query = query.order_by(Message.seq)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).unique().all()


@dataclass(frozen=True)
class Anchor:
    """The message a page of messages starts after or ends before."""

    seq: int
    created_at: datetime


def message_anchor(session: Session, conversation_id: str, message_id: str) -> Anchor | None:
    row = session.execute(
        select(Message.seq, Message.created_at).where(
            Message.id == message_id, Message.conversation_id == conversation_id
        )
    ).first()
    return None if row is None else Anchor(row.seq, row.created_at)


def message_window(
    session: Session,
    conversation_id: str,
    *,
    limit: int,
    before_seq: int | None = None,
    after_seq: int | None = None,
) -> list[Message]:
    """Keyset pagination on (conversation_id, seq), never OFFSET; in creation order either way.

    With ``after_seq``: the first ``limit`` messages after it. Otherwise the last ``limit``
    messages before ``before_seq``, or the newest ones without it (the index read backwards).
    """
    query = select(Message).where(Message.conversation_id == conversation_id)
    if after_seq is not None:
        query = query.where(Message.seq > after_seq).order_by(Message.seq).limit(limit)
        return list(session.scalars(query).unique())
    # The page's seqs first, off the (conversation_id, seq) index alone. Asked for whole rows
    # newest first, PostgreSQL may read the primary key backwards instead, through every later
    # message of every conversation, when this one holds a fair share of all messages: its
    # statistics cannot tell that they are not the latest.
    page = select(Message.seq).where(Message.conversation_id == conversation_id)
    if before_seq is not None:
        page = page.where(Message.seq < before_seq)
    page = page.order_by(Message.seq.desc()).limit(limit)
    query = select(Message).where(Message.seq.in_(page)).order_by(Message.seq)
    return list(session.scalars(query).unique())


# The columns of an author on the wire, in ``fin_api.wire``'s order.
_USER_COLUMNS = (EndUser.id, EndUser.name, EndUser.email, EndUser.photo_url, EndUser.attributes)
_AGENT_COLUMNS = (Agent.id, Agent.name, Agent.email, Agent.photo_url, Agent.alias)


def _wire_conversation(dialect: str) -> Select[Any]:
    """get_conversation's answer, every column of it in one row: the conversation, its end user,
    its assignee (null columns when nobody is) and its tags as one JSON array of ``[position,
    tag]`` pairs (an aggregate's order is not promised on SQLite: the pairs carry it)."""
    if dialect == "postgresql":
        pairs: Any = func.json_agg(
            func.json_build_array(ConversationTag.position, ConversationTag.tag)
        )
    else:
        pairs = func.json_group_array(
            func.json_array(ConversationTag.position, ConversationTag.tag)
        )
    tags = select(pairs).where(ConversationTag.conversation_id == Conversation.id)
    return (
        select(
            Conversation.id,
            Conversation.status,
            Conversation.title,
            Conversation.attributes,
            Conversation.created_at,
            Conversation.updated_at,
            *_USER_COLUMNS,
            *_AGENT_COLUMNS,
            tags.scalar_subquery(),
        )
        .join(EndUser, EndUser.id == Conversation.user_id)
        .outerjoin(Agent, Agent.id == Conversation.assignee_id)
        # findesk's own chat is not Fin's to read here (``findesk.chat``): as if absent.
        .where(Conversation.id == bindparam("conversation_id"), Conversation.channel != "chat")
    )


# Built once: a statement memoizes its cache key, and Fin reads a conversation on every sync.
_WIRE_CONVERSATION = {name: _wire_conversation(name) for name in ("sqlite", "postgresql")}


def conversation_wire_row(
    connection: Connection, conversation_id: str
) -> tuple[Sequence[Any], list[str]] | None:
    """The conversation's columns for the wire (see ``_wire_conversation``) and its tag names
    in order, in one query; None if there is no such conversation."""
    statement = _WIRE_CONVERSATION[connection.dialect.name]
    row = connection.execute(statement, {"conversation_id": conversation_id}).first()
    if row is None:
        return None
    pairs = row[-1]
    if isinstance(pairs, str):  # SQLite hands JSON back as text
        pairs = json.loads(pairs)
    return row[:-1], [tag for _position, tag in sorted(pairs or ())]


# get_messages sends every column of these, once a message: read as plain rows, with no ORM
# object and no joined author per row (a conversation has few authors: see ``message_authors``).
# id, conversation_id, body, author_user_id, author_agent_id, visibility, created_at, and the
# attachments as JSON text: most messages have none, and decoding 10,000 "[]" costs a fifth of
# a long get_messages.
if TYPE_CHECKING:
    WireRow = Row[str, str, str | None, str | None, str | None, str, datetime, str | None]


# The statements of get_messages, built once (building one costs more than running it).
_CONVERSATION_ID: Any = bindparam("conversation_id")
_WIRE_START = (
    select(
        *_USER_COLUMNS,
        select(Message.seq)
        .where(Message.id == bindparam("after_id"), Message.conversation_id == _CONVERSATION_ID)
        .scalar_subquery(),
    )
    .join(Conversation, Conversation.user_id == EndUser.id)
    .where(Conversation.id == _CONVERSATION_ID, Conversation.channel != "chat")
)
_WIRE_MESSAGES = (
    select(
        Message.id,
        Message.conversation_id,
        Message.body,
        Message.author_user_id,
        Message.author_agent_id,
        Message.visibility,
        Message.created_at,
        cast(Message.attachments, Text),
    )
    .where(Message.conversation_id == _CONVERSATION_ID, Message.seq > bindparam("after_seq"))
    .order_by(Message.seq)
)
_WIRE_USERS = select(*_USER_COLUMNS).where(EndUser.id.in_(bindparam("ids", expanding=True)))
_WIRE_AGENTS = select(*_AGENT_COLUMNS).where(Agent.id.in_(bindparam("ids", expanding=True)))


def wire_start(
    connection: Connection, conversation_id: str, after_id: str | None
) -> tuple[Sequence[Any], int | None] | None:
    """In one query: the conversation's end user, as ``_USER_COLUMNS`` (None: no such
    conversation), and the seq of ``after_id`` if that is one of its messages."""
    parameters = {"conversation_id": conversation_id, "after_id": after_id}
    row = connection.execute(_WIRE_START, parameters).first()
    return None if row is None else (row[:-1], row[-1])


def message_wire_rows(
    connection: Connection, conversation_id: str, *, after_seq: int, chunk: int = 1000
) -> Iterator[Sequence[WireRow]]:
    """The conversation's messages after ``after_seq`` (0: all), in creation order, read from
    the cursor ``chunk`` rows at a time rather than all at once."""
    parameters = {"conversation_id": conversation_id, "after_seq": after_seq}
    return connection.execute(_WIRE_MESSAGES, parameters).partitions(chunk)


def message_authors(
    connection: Connection, user_ids: Collection[str], agent_ids: Collection[str]
) -> tuple[dict[str, Sequence[Any]], dict[str, Sequence[Any]]]:
    """The end users and agents with these ids, by id, as ``_USER_COLUMNS`` and
    ``_AGENT_COLUMNS``."""
    users: dict[str, Sequence[Any]] = {}
    agents: dict[str, Sequence[Any]] = {}
    if user_ids:
        found = connection.execute(_WIRE_USERS, {"ids": list(user_ids)})
        users = {row[0]: row for row in found}
    if agent_ids:
        found = connection.execute(_WIRE_AGENTS, {"ids": list(agent_ids)})
        agents = {row[0]: row for row in found}
    return users, agents


@dataclass(frozen=True)
class ConversationFilter:
    """What a queue shows. ``owner``: waiting (nobody), fin (a bot), mine, or any.
    ``snoozed``: only the snoozed (True), none of them (False), or either (None)."""

    owner: str = "any"
    agent_id: str | None = None
    statuses: tuple[str, ...] = ()
    tag: str | None = None
    user_id: str | None = None
    snoozed: bool | None = None
    team_id: str | None = None  # only this team's (``findesk.teams``)

    @classmethod
    def queue(cls, name: str, agent_id: str, **narrowed: Any) -> ConversationFilter:
        """A queue by name: waiting, mine and fin leave the snoozed out (they come back when
        they wake), snoozed holds only those, all holds every conversation."""
        if name == "all":
            return cls(agent_id=agent_id, **narrowed)
        if name == "snoozed":
            return cls(agent_id=agent_id, snoozed=True, **narrowed)
        return cls(owner=name, agent_id=agent_id, snoozed=False, **narrowed)


def filtered(query: AnySelect, f: ConversationFilter) -> AnySelect:
    """``query`` narrowed to the conversations of the filter's queue."""
    if f.statuses:
        query = query.where(Conversation.status.in_(f.statuses))
    if f.owner == "waiting":
        query = query.where(Conversation.assignee_id.is_(None))
    elif f.owner == "fin":
        query = query.where(
            Conversation.assignee_id.in_(select(Agent.id).where(Agent.is_bot.is_(True)))
        )
    elif f.owner == "mine":
        query = query.where(Conversation.assignee_id == f.agent_id)
    if f.tag:
        query = query.where(
            exists().where(
                ConversationTag.conversation_id == Conversation.id, ConversationTag.tag == f.tag
            )
        )
    if f.user_id:
        query = query.where(Conversation.user_id == f.user_id)
    if f.team_id:
        query = query.where(Conversation.team_id == f.team_id)
    if f.snoozed is not None:
        query = query.where(SNOOZED if f.snoozed else Conversation.snoozed_until.is_(None))
    return query


def list_page(
    session: Session,
    f: ConversationFilter,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> Sequence[Conversation]:
    """Newest activity first; keyset pagination on (last_activity_at, id)."""
    query = filtered(select(Conversation), f)
    if before is not None:
        at, conversation_id = before
        query = query.where(
            # Implied by the next condition, and what an index on last_activity_at can start
            # from: a later page reads its rows, not every row of the pages before it.
            Conversation.last_activity_at <= at,
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < conversation_id),
            ),
        )
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(
        limit
    )
    return session.scalars(query).unique().all()


def count(session: Session, f: ConversationFilter) -> int:
    query = filtered(select(func.count()).select_from(Conversation), f)
    return int(session.scalar(query) or 0)


# A conversation's place in the queues: its status and its assignee's id ('' for nobody).
QueueKey = tuple[str, str]
_IDS_PER_QUERY = 500


def queue_keys(
    session: Session, conversation_ids: Collection[str], *, lock: bool = False
) -> dict[str, QueueKey]:
    """Each of these conversations that exists, by id: its status and assignee. ``lock``: their
    rows locked for this transaction (PostgreSQL), in id order."""
    found: dict[str, QueueKey] = {}
    ordered = sorted(conversation_ids)
    for start in range(0, len(ordered), _IDS_PER_QUERY):
        query = (
            select(Conversation.id, Conversation.status, Conversation.assignee_id)
            .where(Conversation.id.in_(ordered[start : start + _IDS_PER_QUERY]))
            .order_by(Conversation.id)
        )
        if lock:
            query = query.with_for_update()
        for row in session.execute(query):
            found[row.id] = (row.status, row.assignee_id or "")
    return found


def add_to_counts(session: Session, changes: Mapping[QueueKey, int], shard: int) -> None:
    """Add each change to its queue count, in one statement whose rows (and so row locks)
    come in key order: two transactions never wait on each other in a circle."""
    rows = [
        {"status": status, "assignee_id": assignee, "shard": shard, "total": change}
        for (status, assignee), change in sorted(changes.items())
        if change
    ]
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ConversationCount).values(rows)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["status", "assignee_id", "shard"],
            set_={"total": ConversationCount.total + statement.excluded.total},
        )
    )


@dataclass(frozen=True)
class QueueTotals:
    waiting: int
    mine: int
    fin: int
    all: int


def _queue_totals(
    source: Any,
    assignee: SQLColumnExpression[Any],
    total: SQLColumnExpression[Any],
    nobody: ColumnElement[bool],
) -> Select[Any]:
    """Rows of (assignee, total) summed as the sidebar's queues: nobody's, the agent's
    (``:agent_id``), Fin's (any bot's) and all. Built once: the inbox asks on every page."""

    def where(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, total), else_=0)), 0)

    return (
        select(
            where(nobody),
            where(assignee == bindparam("agent_id")),
            where(Agent.is_bot.is_(True)),
            func.coalesce(func.sum(total), 0),
        )
        .select_from(source)
        .outerjoin(Agent, Agent.id == assignee)
    )


_OPEN_TOTALS = _queue_totals(
    ConversationCount,
    ConversationCount.assignee_id,
    ConversationCount.total,
    ConversationCount.assignee_id == "",
).where(ConversationCount.status == "open")
_SNOOZED = (
    select(Conversation.assignee_id, func.count().label("total"))
    .where(SNOOZED, Conversation.status == "open")
    .group_by(Conversation.assignee_id)
    .subquery()
)
_SNOOZED_TOTALS = _queue_totals(
    _SNOOZED, _SNOOZED.c.assignee_id, _SNOOZED.c.total, _SNOOZED.c.assignee_id.is_(None)
)


def _totals(session: Session, statement: Select[Any], agent_id: str) -> QueueTotals:
    row = session.execute(statement, {"agent_id": agent_id}).one()
    return QueueTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def open_counts(session: Session, agent_id: str) -> QueueTotals:
    """Open conversations waiting for a human, the agent's, Fin's (any bot's), and all of
    them, from the kept counts: a few rows a queue, whatever the number of conversations."""
    return _totals(session, _OPEN_TOTALS, agent_id)


def snoozed_counts(session: Session, agent_id: str) -> QueueTotals:
    """Open conversations set aside, by the queue they wake back into: read from the partial
    index of the snoozed ones, a few rows whatever the number of conversations."""
    return _totals(session, _SNOOZED_TOTALS, agent_id)


def due_to_wake(session: Session, now: datetime, limit: int) -> Sequence[str]:
    """Snoozed conversations whose time has come, soonest first, their rows locked; those
    another process is waking are skipped (PostgreSQL; SQLite has one writer at a time). Read
    each with ``get_for_update`` afterwards, as every change does."""
    query = (
        select(Conversation.id)
        .where(Conversation.snoozed_until.is_not(None), Conversation.snoozed_until <= now)
        .order_by(Conversation.snoozed_until)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).all()


def next_wake_at(session: Session) -> datetime | None:
    """When the next snoozed conversation is due to wake."""
    return session.scalar(
        select(func.min(Conversation.snoozed_until)).where(Conversation.snoozed_until.is_not(None))
    )


def kept_counts(session: Session) -> dict[QueueKey, int]:
    """The kept counts, summed over their shards, by status and assignee; zeros left out."""
    kept = ConversationCount
    rows = session.execute(
        select(kept.status, kept.assignee_id, func.sum(kept.total)).group_by(
            kept.status, kept.assignee_id
        )
    )
    return {(row[0], row[1]): int(row[2]) for row in rows if row[2]}


def counted_counts(session: Session) -> dict[QueueKey, int]:
    """The same, counted over the conversations: a scan of the table (repair, checks)."""
    assignee = func.coalesce(Conversation.assignee_id, "")
    rows = session.execute(
        select(Conversation.status, assignee, func.count()).group_by(Conversation.status, assignee)
    )
    return {(row[0], row[1]): int(row[2]) for row in rows}


def hold_off_conversation_changes(session: Session) -> None:
    """Wait for the transactions that changed conversations to end, and keep new ones from
    changing any until this one ends (PostgreSQL; SQLite has one writer at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE conversations IN SHARE MODE"))


def replace_counts(session: Session, counts: Mapping[QueueKey, int]) -> None:
    """Make the kept counts these (see ``hold_off_conversation_changes``)."""
    session.execute(delete(ConversationCount))
    add_to_counts(session, counts, shard=0)


def history(
    session: Session, conversation_id: str, *, after_id: int = 0, limit: int | None = None
) -> Sequence[ConversationEvent]:
    query = (
        select(ConversationEvent)
        .where(
            ConversationEvent.conversation_id == conversation_id, ConversationEvent.id > after_id
        )
        .order_by(ConversationEvent.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).unique().all()


def history_between(
    session: Session, conversation_id: str, *, since: datetime | None, until: datetime | None
) -> Sequence[ConversationEvent]:
    """Changes from ``since`` (inclusive) until ``until`` (exclusive), oldest first; None: no
    bound on that side."""
    query = select(ConversationEvent).where(ConversationEvent.conversation_id == conversation_id)
    if since is not None:
        query = query.where(ConversationEvent.at >= since)
    if until is not None:
        query = query.where(ConversationEvent.at < until)
    return session.scalars(query.order_by(ConversationEvent.id)).unique().all()


def known_tags(session: Session, limit: int) -> list[str]:
    """Tags in use, alphabetically (for completion as an agent tags a conversation)."""
    rows = session.scalars(
        select(ConversationTag.tag).distinct().order_by(ConversationTag.tag).limit(limit)
    )
    return list(rows)


@dataclass(frozen=True)
class Preview:
    """A conversation's newest message, as its queue row shows it."""

    text: str | None  # its visible text (None: only attachments)
    private: bool
    from_end_user: bool


_NEWEST_SEQ = (
    select(func.max(Message.seq))
    .where(Message.conversation_id == Conversation.id)
    .correlate(Conversation)
    .scalar_subquery()
)
# Built once: the inbox asks on every page of a queue.
_LATEST_MESSAGES = select(
    Message.conversation_id, Message.plain_text, Message.visibility, Message.author_type
).where(
    Message.seq.in_(
        select(_NEWEST_SEQ).where(
            Conversation.id.in_(bindparam("conversation_ids", expanding=True))
        )
    )
)


def latest_messages(session: Session, conversation_ids: Sequence[str]) -> dict[str, Preview]:
    """The newest message of each conversation: per conversation, one descent of the
    (conversation, seq) index to its highest seq, however long the conversation (a GROUP BY
    would read every message of each)."""
    if not conversation_ids:
        return {}
    rows = session.execute(_LATEST_MESSAGES, {"conversation_ids": list(conversation_ids)})
    return {
        row.conversation_id: Preview(
            row.plain_text, row.visibility == "private", row.author_type == "end_user"
        )
        for row in rows
    }


# --- how far each agent has read each conversation (the queues' unread marker) --------------

_READ_SEQ = select(ConversationRead.read_seq).where(
    ConversationRead.agent_id == bindparam("agent_id"),
    ConversationRead.conversation_id == bindparam("conversation_id"),
)


def read_seq(session: Session, agent_id: str, conversation_id: str) -> int:
    """The seq of the newest message of the conversation the agent was shown; 0: never opened."""
    parameters = {"agent_id": agent_id, "conversation_id": conversation_id}
    return int(session.scalar(_READ_SEQ, parameters) or 0)


def mark_read(
    session: Session, agent_id: str, conversation_id: str, seq: int, at: datetime
) -> None:
    """Record that the agent has read the conversation up to the message ``seq``: one upsert,
    which never moves an agent back to an older message (a slower request that showed fewer
    messages, say, arriving last)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ConversationRead).values(
        agent_id=agent_id, conversation_id=conversation_id, read_seq=seq, read_at=at
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["agent_id", "conversation_id"],
            set_={"read_seq": statement.excluded.read_seq, "read_at": statement.excluded.read_at},
            where=ConversationRead.read_seq < statement.excluded.read_seq,
        )
    )


_NEWER_FROM_OTHERS = (
    exists()
    .where(
        Message.conversation_id == Conversation.id,
        Message.seq > func.coalesce(ConversationRead.read_seq, 0),
        # End users' messages have no agent: NULL is distinct from the agent.
        Message.author_agent_id.is_distinct_from(bindparam("agent_id")),
    )
    .correlate(Conversation, ConversationRead)
)
_UNREAD = (
    select(Conversation.id)
    .outerjoin(
        ConversationRead,
        and_(
            ConversationRead.conversation_id == Conversation.id,
            ConversationRead.agent_id == bindparam("agent_id"),
        ),
    )
    .where(Conversation.id.in_(bindparam("conversation_ids", expanding=True)), _NEWER_FROM_OTHERS)
)


def unread_among(session: Session, agent_id: str, conversation_ids: Sequence[str]) -> set[str]:
    """Which of these conversations are unread for the agent, in one query: those with a
    message after the newest the agent was shown that someone else wrote (the agent's own
    replies and notes never count). A conversation the agent never opened counts from its
    first message: unread as soon as anyone else wrote in it, as a waiting one always has.

    Per conversation: its read row by key, then its (conversation, seq) index range after
    that seq, which stops at the first message by someone else; usually the range is empty
    or holds that one message, however long the conversation."""
    if not conversation_ids:
        return set()
    found = session.scalars(
        _UNREAD, {"agent_id": agent_id, "conversation_ids": list(conversation_ids)}
    )
    return set(found)
