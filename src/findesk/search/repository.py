"""All search SQL, for both indexes: SQLite's FTS5 tables and PostgreSQL's GIN indexes over
``to_tsvector('simple', …)`` (both built and kept current by migration 0013).

A search is one of two plans, picked by counting matches up to ``DENSE_AT``:

- few matches (a rare word, an email): the matching messages and heads are read from the index
  and their conversations sorted by activity: its cost grows with the number of matches;
- many matches (a common word): the conversations are walked newest first, through the queue's
  index, a batch at a time, and the index is asked once a batch which of them match, until a
  page is full: its cost grows with how rare matches are, and a common word is found in the
  first batch.

Either way the answer is the same: the conversations in which one message, or the title, name
and email together, hold every word, newest activity first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select, text
from sqlalchemy.orm import Session

from findesk.conversations.models import Conversation, Message
from findesk.conversations.repository import ConversationFilter, filtered
from findesk.search.models import SearchHead
from findesk.search.query import Query

# Above this many matching messages (or heads) a word is common enough that walking the
# conversations newest first finds a page sooner than reading every match (bench/search.py).
DENSE_AT = 5000

# PostgreSQL: what the GIN indexes hold. Punctuation becomes space first, so that an email or
# a URL is indexed as its words (``bob``, ``example``, ``com``), as FTS5 cuts it.
_PG_VECTOR = "to_tsvector('simple'::regconfig, regexp_replace({column}, '[[:punct:]]+', ' ', 'g'))"
PG_MESSAGE_VECTOR = _PG_VECTOR.format(column="COALESCE(plain_text, '')")
PG_HEAD_VECTOR = _PG_VECTOR.format(column="plain_text")


@dataclass(frozen=True)
class _Sql:
    count_messages: str
    count_heads: str
    # The conversations that match (few matches), as one column ``conversation_id``.
    matching_ids: str
    # Of some conversations (``:ids``): those whose head matches, and the newest matching
    # message of each that has one.
    heads_among: str
    newest_among: str


# FTS5 reads a query's index once a statement; a prefix query merges every word's list of
# rows first, so that probing it row by row costs that much a row. The statements below ask
# FTS5 once, for the rows between the first and the last of the conversations asked about.
_SQLITE = _Sql(
    count_messages="SELECT count(*) FROM (SELECT 1 FROM message_search"
    " WHERE message_search MATCH :q LIMIT :cap)",
    count_heads="SELECT count(*) FROM (SELECT 1 FROM head_search"
    " WHERE head_search MATCH :q LIMIT :cap)",
    matching_ids="SELECT m.conversation_id FROM messages m WHERE m.seq IN"
    " (SELECT rowid FROM message_search WHERE message_search MATCH :q)"
    " UNION SELECT h.conversation_id FROM search_heads h WHERE h.id IN"
    " (SELECT rowid FROM head_search WHERE head_search MATCH :q)",
    heads_among="SELECT h.conversation_id FROM search_heads h"
    " WHERE h.conversation_id IN :ids AND h.id IN"
    " (SELECT rowid FROM head_search WHERE head_search MATCH :q AND rowid BETWEEN"
    " (SELECT min(id) FROM search_heads WHERE conversation_id IN :ids)"
    " AND (SELECT max(id) FROM search_heads WHERE conversation_id IN :ids))",
    newest_among="SELECT m.conversation_id, max(m.seq) FROM messages m"
    " WHERE m.conversation_id IN :ids AND m.seq IN"
    " (SELECT rowid FROM message_search WHERE message_search MATCH :q AND rowid BETWEEN"
    " (SELECT min(seq) FROM messages WHERE conversation_id IN :ids)"
    " AND (SELECT max(seq) FROM messages WHERE conversation_id IN :ids))"
    " GROUP BY m.conversation_id",
)


def _pg(statement: str) -> str:
    """PostgreSQL's statement: ``%M`` and ``%H`` are the indexed vectors of messages and heads,
    ``%Q`` the query (written once here, so that each matches its index's expression)."""
    return (
        statement.replace("%M", PG_MESSAGE_VECTOR)
        .replace("%H", PG_HEAD_VECTOR)
        .replace("%Q", "to_tsquery('simple'::regconfig, :q)")
    )


_POSTGRES = _Sql(
    count_messages=_pg("SELECT count(*) FROM (SELECT 1 FROM messages WHERE %M @@ %Q LIMIT :cap) s"),
    count_heads=_pg(
        "SELECT count(*) FROM (SELECT 1 FROM search_heads WHERE %H @@ %Q LIMIT :cap) s"
    ),
    matching_ids=_pg(
        "SELECT conversation_id FROM messages WHERE %M @@ %Q"
        " UNION SELECT conversation_id FROM search_heads WHERE %H @@ %Q"
    ),
    heads_among=_pg(
        "SELECT conversation_id FROM search_heads WHERE conversation_id IN :ids AND %H @@ %Q"
    ),
    newest_among=_pg(
        "SELECT conversation_id, max(seq) FROM messages"
        " WHERE conversation_id IN :ids AND %M @@ %Q GROUP BY conversation_id"
    ),
)


def _sql(session: Session) -> tuple[_Sql, str]:
    """The dialect's statements, and the query as that dialect's index reads it."""
    return (
        (_POSTGRES, "tsquery")
        if session.get_bind().dialect.name == "postgresql"
        else (
            _SQLITE,
            "fts5",
        )
    )


@dataclass(frozen=True)
class Found:
    conversation_ids: list[str]
    # The newest matching message (its seq) of each of the first ``limit`` that has one.
    newest: dict[str, int]


# The conversations walked at a time when matches are many: the first batch, and the most.
_FIRST_BATCH, _MAX_BATCH = 100, 3200


def find(
    session: Session,
    f: ConversationFilter,
    query: Query,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> Found:
    """The ids of the conversations that match, within the filter, newest activity first
    (``limit`` at most), and their newest matching messages."""
    sql, form = _sql(session)
    q = query.fts5() if form == "fts5" else query.tsquery()
    many = (
        _count(session, sql.count_messages, q) >= DENSE_AT
        or _count(session, sql.count_heads, q) >= DENSE_AT
    )
    if not many:
        matching = text(sql.matching_ids).columns(conversation_id=Conversation.id.type)
        condition = Conversation.id.in_(select(matching.subquery().c.conversation_id))
        statement = _page(filtered(select(Conversation.id), f).where(condition), before, limit)
        ids = list(session.scalars(statement, {"q": q}))
        return Found(ids, _newest_among(session, sql, ids, q))
    # Many: walk the queue newest first, a batch of conversations at a time (each batch
    # twice the last), and keep those that match.
    ids, newest = [], {}
    batch = _FIRST_BATCH
    columns: Any = select(Conversation.id, Conversation.last_activity_at)
    while len(ids) < limit:
        walk = _page(filtered(columns, f), before, batch)
        rows = session.execute(walk).all()
        walked = [row[0] for row in rows]
        if not walked:
            break
        found = _newest_among(session, sql, walked, q)
        heads = _heads_among(session, sql, walked, q)
        for conversation_id in walked:
            if conversation_id in found or conversation_id in heads:
                ids.append(conversation_id)
                if conversation_id in found:
                    newest[conversation_id] = found[conversation_id]
                if len(ids) == limit:
                    break
        if len(rows) < batch:
            break
        before = (rows[-1][1], rows[-1][0])
        batch = min(2 * batch, _MAX_BATCH)
    return Found(ids, newest)


def _newest_among(session: Session, sql: _Sql, ids: Sequence[str], q: str) -> dict[str, int]:
    if not ids:
        return {}
    statement = text(sql.newest_among).bindparams(bindparam("ids", expanding=True))
    rows = session.execute(statement, {"ids": list(ids), "q": q})
    return {row[0]: int(row[1]) for row in rows}


def _heads_among(session: Session, sql: _Sql, ids: Sequence[str], q: str) -> set[str]:
    statement = text(sql.heads_among).bindparams(bindparam("ids", expanding=True))
    return set(session.scalars(statement, {"ids": list(ids), "q": q}))


def _count(session: Session, statement: str, q: str) -> int:
    return int(session.scalar(text(statement), {"q": q, "cap": DENSE_AT}) or 0)


def _page(query: Select[Any], before: tuple[datetime, str] | None, limit: int) -> Select[Any]:
    if before is not None:
        at, conversation_id = before
        query = query.where(
            Conversation.last_activity_at <= at,
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < conversation_id),
            ),
        )
    return query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit)


def messages(session: Session, seqs: Sequence[int]) -> dict[str, Message]:
    """These messages, by conversation."""
    if not seqs:
        return {}
    found = session.scalars(select(Message).where(Message.seq.in_(seqs)))
    return {message.conversation_id: message for message in found}


def heads(session: Session, conversation_ids: Sequence[str]) -> dict[str, str]:
    """The searchable heads (title, name and email) of these conversations."""
    if not conversation_ids:
        return {}
    rows = session.execute(
        select(SearchHead.conversation_id, SearchHead.plain_text).where(
            SearchHead.conversation_id.in_(conversation_ids)
        )
    )
    return {row[0]: row[1] for row in rows}


def conversations(session: Session, conversation_ids: Sequence[str]) -> list[Conversation]:
    """These conversations, in this order."""
    if not conversation_ids:
        return []
    rows = session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids)))
    by_id = {c.id: c for c in rows.unique()}
    return [by_id[i] for i in conversation_ids if i in by_id]
