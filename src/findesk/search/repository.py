"""All search SQL, for both indexes: SQLite's FTS5 tables and PostgreSQL's GIN indexes over
``to_tsvector('simple', …)`` (both built and kept current by migration 0013).

A search is one of two plans, picked by counting matches up to ``DENSE_AT``:

- few matches (a rare word, an email): the matching messages and heads are read from the index
  and their conversations sorted by activity: its cost grows with the number of matches;
- many matches (a common word): the conversations are walked newest first, through the queue's
  index, and each is asked whether it matches until a page is full: its cost grows with
  how rare matches are, and a common word is found in the first few conversations.

Either way the answer is the same: the conversations in which one message, or the title, name
and email together, hold every word, newest activity first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select, text
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
    # Conditions on the outer ``conversations`` row (many matches).
    head_matches: str
    message_matches: str
    # The newest matching message of each of some conversations (``:ids``).
    newest_of_few: str
    newest_of_one: str


_SQLITE = _Sql(
    count_messages="SELECT count(*) FROM (SELECT 1 FROM message_search"
    " WHERE message_search MATCH :q LIMIT :cap)",
    count_heads="SELECT count(*) FROM (SELECT 1 FROM head_search"
    " WHERE head_search MATCH :q LIMIT :cap)",
    matching_ids="SELECT m.conversation_id FROM messages m WHERE m.seq IN"
    " (SELECT rowid FROM message_search WHERE message_search MATCH :q)"
    " UNION SELECT h.conversation_id FROM search_heads h WHERE h.id IN"
    " (SELECT rowid FROM head_search WHERE head_search MATCH :q)",
    # "+conversations.id": keeps SQLite from turning the walk into a scan of every match.
    head_matches="EXISTS (SELECT 1 FROM search_heads h WHERE h.conversation_id ="
    " +conversations.id AND EXISTS (SELECT 1 FROM head_search"
    " WHERE head_search MATCH :q AND head_search.rowid = h.id))",
    message_matches="EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id ="
    " +conversations.id AND EXISTS (SELECT 1 FROM message_search"
    " WHERE message_search MATCH :q AND message_search.rowid = m.seq))",
    newest_of_few="SELECT m.conversation_id, max(m.seq) FROM messages m"
    " WHERE m.conversation_id IN :ids AND m.seq IN"
    " (SELECT rowid FROM message_search WHERE message_search MATCH :q)"
    " GROUP BY m.conversation_id",
    newest_of_one="SELECT m.seq FROM messages m WHERE m.conversation_id = :id"
    " AND EXISTS (SELECT 1 FROM message_search WHERE message_search MATCH :q"
    " AND message_search.rowid = m.seq) ORDER BY m.seq DESC LIMIT 1",
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
    # A sub-select with LIMIT is asked once a conversation, never turned into a join that
    # would read every match first.
    head_matches=_pg(
        "(SELECT 1 FROM search_heads WHERE conversation_id = conversations.id"
        " AND %H @@ %Q LIMIT 1) IS NOT NULL"
    ),
    message_matches=_pg(
        "(SELECT 1 FROM messages WHERE conversation_id = conversations.id"
        " AND %M @@ %Q LIMIT 1) IS NOT NULL"
    ),
    newest_of_few=_pg(
        "SELECT conversation_id, max(seq) FROM messages"
        " WHERE conversation_id IN :ids AND %M @@ %Q GROUP BY conversation_id"
    ),
    newest_of_one=_pg(
        "SELECT seq FROM messages WHERE conversation_id = :id AND %M @@ %Q"
        " ORDER BY seq DESC LIMIT 1"
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
    dense: bool  # which plan found them (see the module's docstring)


def find(
    session: Session,
    f: ConversationFilter,
    query: Query,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> Found:
    """The ids of the conversations that match, within the filter, newest activity first."""
    sql, form = _sql(session)
    q = query.fts5() if form == "fts5" else query.tsquery()
    many = (
        _count(session, sql.count_messages, q) >= DENSE_AT
        or _count(session, sql.count_heads, q) >= DENSE_AT
    )
    condition: ColumnElement[bool]
    if many:
        condition = or_(text(sql.head_matches), text(sql.message_matches))
    else:
        matching = text(sql.matching_ids).columns(conversation_id=Conversation.id.type)
        condition = Conversation.id.in_(select(matching.subquery().c.conversation_id))
    statement = _page(filtered(select(Conversation.id), f).where(condition), before, limit)
    ids = list(session.scalars(statement, {"q": q}))
    return Found(ids, many)


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


def newest_matching_messages(
    session: Session, conversation_ids: Sequence[str], query: Query, *, dense: bool
) -> dict[str, Message]:
    """The newest message of each conversation that holds every word, if one does."""
    if not conversation_ids:
        return {}
    sql, form = _sql(session)
    q = query.fts5() if form == "fts5" else query.tsquery()
    seqs: list[int] = []
    if dense:  # newest first, one conversation at a time: matches are near
        for conversation_id in conversation_ids:
            seq = session.scalar(text(sql.newest_of_one), {"id": conversation_id, "q": q})
            if seq is not None:
                seqs.append(int(seq))
    else:  # read every match once (there are few)
        statement = text(sql.newest_of_few).bindparams(bindparam("ids", expanding=True))
        rows = session.execute(statement, {"ids": list(conversation_ids), "q": q})
        seqs = [int(row[1]) for row in rows]
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
