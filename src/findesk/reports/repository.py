"""All the SQL of the reports: reading what the facts are computed from, writing the facts and
their daily sums, and summing them for a report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    select,
    union,
)
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, ConversationEvent, ConversationTag, Message
from findesk.csat.models import CsatRating
from findesk.reports.facts import ConversationIn, EventIn, MessageIn
from findesk.reports.models import ReportDay, ReportFact, ReportState
from findesk.reports.schemas import DISTRIBUTION_BOUNDS, ReportQuery

F = ReportFact.__table__.c
D = ReportDay.__table__.c
DIMENSIONS = ("channel", "team_id", "agent_id", "reason")


# --- what the facts are computed from ---------------------------------------------------------


def bot_ids(session: Session) -> frozenset[str]:
    return frozenset(session.scalars(select(Agent.id).where(Agent.is_bot)))


def changed_since(session: Session, since: datetime) -> set[str]:
    """Conversations changed at or after ``since``: touched, or given a history event."""
    touched = select(Conversation.id).where(Conversation.updated_at >= since)
    recorded = select(ConversationEvent.conversation_id).where(ConversationEvent.at >= since)
    return set(session.scalars(union(touched, recorded)))


def conversation_ids(session: Session, *, after: str, limit: int) -> list[str]:
    """Every conversation id, in pages (a full rebuild)."""
    query = select(Conversation.id).where(Conversation.id > after).order_by(Conversation.id)
    return list(session.scalars(query.limit(limit)))


def count_all(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Conversation)) or 0


def conversations(session: Session, ids: Sequence[str]) -> list[ConversationIn]:
    rows = session.execute(
        select(Conversation.id, Conversation.user_id, Conversation.created_at,
               Conversation.attributes, Conversation.team_id).where(Conversation.id.in_(ids))
    )  # fmt: skip
    return [
        ConversationIn(id, user_id, created, attrs or {}, team_id)
        for id, user_id, created, attrs, team_id in rows
    ]


def events(session: Session, ids: Sequence[str]) -> dict[str, list[EventIn]]:
    found: dict[str, list[EventIn]] = {}
    rows = session.execute(
        select(ConversationEvent.conversation_id, ConversationEvent.kind, ConversationEvent.actor,
               ConversationEvent.from_value, ConversationEvent.to_value, ConversationEvent.detail,
               ConversationEvent.at)
        .where(ConversationEvent.conversation_id.in_(ids))
        .order_by(ConversationEvent.conversation_id, ConversationEvent.id)
    )  # fmt: skip
    for cid, kind, actor, from_value, to_value, detail, at in rows:
        found.setdefault(cid, []).append(
            EventIn(kind, actor, from_value, to_value, detail or {}, at)
        )
    return found


def messages(session: Session, ids: Sequence[str]) -> dict[str, list[MessageIn]]:
    found: dict[str, list[MessageIn]] = {}
    rows = session.execute(
        select(Message.conversation_id, Message.created_at, Message.author_type,
               Message.author_agent_id, Message.visibility, Message.message_type, Message.id)
        .where(Message.conversation_id.in_(ids))
        .order_by(Message.conversation_id, Message.seq)
    )  # fmt: skip
    for cid, created_at, author_type, agent_id, visibility, message_type, mid in rows:
        found.setdefault(cid, []).append(
            MessageIn(created_at, author_type, agent_id, visibility, message_type, mid)
        )
    return found


def conversations_of_users(session: Session, user_ids: Iterable[str]) -> dict[str, list[datetime]]:
    """When each end user's conversations were opened."""
    found: dict[str, list[datetime]] = {}
    rows = session.execute(
        select(Conversation.user_id, Conversation.created_at).where(
            Conversation.user_id.in_(set(user_ids))
        )
    )
    for user_id, created_at in rows:
        found.setdefault(user_id, []).append(created_at)
    return found


def fin_resolved_of_users(
    session: Session, user_ids: Iterable[str], since: datetime, exclude: set[str]
) -> set[str]:
    """The users' conversations Fin resolved at or after ``since`` that have not come back yet:
    a new conversation of the same user may be their reopen."""
    rows = session.scalars(
        select(F.conversation_id).where(
            F.user_id.in_(set(user_ids)), F.fin_resolved_at >= since, F.came_back_at.is_(None)
        )
    )
    return {cid for cid in rows if cid not in exclude}


# --- writing the facts and their daily sums ---------------------------------------------------


def days_of(session: Session, ids: Sequence[str]) -> set[date]:
    return set(session.scalars(select(F.day).where(F.conversation_id.in_(ids))))


def replace_facts(session: Session, ids: Sequence[str], rows: list[dict[str, Any]]) -> None:
    session.execute(delete(ReportFact).where(ReportFact.conversation_id.in_(ids)))
    if rows:
        session.execute(insert(ReportFact), rows)


def _is(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _fact_sums() -> dict[str, ColumnElement[Any]]:
    """The daily sums (``report_days``' measure columns) as aggregates over ``report_facts``."""
    reply = F.seconds_to_first_human_reply
    sums: dict[str, ColumnElement[Any]] = {
        "conversations": func.count(),
        "fin_resolved": func.sum(_is(F.fin_resolved_at.is_not(None))),
        "fin_reopened": func.sum(_is(F.came_back_at.is_not(None))),
        "handed_over": func.sum(_is(F.handed_over_at.is_not(None))),
        "taken_over": func.count(F.seconds_to_take_over),
        "take_over_seconds": func.coalesce(func.sum(F.seconds_to_take_over), 0.0),
        "first_human_replies": func.count(reply),
        "first_human_reply_seconds": func.coalesce(func.sum(reply), 0.0),
        "resolved": func.count(F.seconds_to_resolve),
        "resolve_seconds": func.coalesce(func.sum(F.seconds_to_resolve), 0.0),
        "replies": func.sum(F.replies),
        "human_replies": func.sum(F.human_replies),
    }
    for score in range(1, 6):
        sums[f"csat_f{score}"] = func.sum(_is(and_(F.csat_score == score, ~F.human_handled)))
        sums[f"csat_h{score}"] = func.sum(_is(and_(F.csat_score == score, F.human_handled)))
    bounds = (0, *DISTRIBUTION_BOUNDS)
    for index, low in enumerate(bounds):
        upper = bounds[index + 1] if index + 1 < len(bounds) else None
        inside = reply >= low if upper is None else and_(reply >= low, reply < upper)
        sums[f"rt{index}"] = func.sum(_is(inside))
    return sums


MEASURE_COLUMNS: tuple[str, ...] = tuple(_fact_sums())


def _days_from_facts(session: Session, *conditions: ColumnElement[bool]) -> None:
    sums = _fact_sums()
    keys = [F.day, *(F[name] for name in DIMENSIONS)]
    query = select(*keys, *(v.label(n) for n, v in sums.items())).where(*conditions)
    session.execute(
        insert(ReportDay).from_select(["day", *DIMENSIONS, *sums], query.group_by(*keys))
    )


def rebuild_days(session: Session, days: Iterable[date]) -> None:
    """Sum the facts of ``days`` into ``report_days`` again."""
    days = sorted(set(days))
    for start in range(0, len(days), 500):
        chunk = days[start : start + 500]
        session.execute(delete(ReportDay).where(ReportDay.day.in_(chunk)))
        _days_from_facts(session, F.day.in_(chunk))


def rebuild_all_days(session: Session) -> None:
    session.execute(delete(ReportDay))
    _days_from_facts(session)


def state(session: Session) -> ReportState | None:
    return session.get(ReportState, 1)


# --- summing for a report ---------------------------------------------------------------------


def _filters(query: ReportQuery, columns: Any) -> list[ColumnElement[bool]]:
    conditions = [columns.day >= query.start, columns.day <= query.end]
    for name in ("channel", "team_id", "agent_id", "reason"):
        value = getattr(query, name)
        if value is not None:
            conditions.append(columns[name] == value)
    return conditions


def _tagged(query: ReportQuery) -> ColumnElement[bool]:
    return F.conversation_id.in_(
        select(ConversationTag.conversation_id).where(ConversationTag.tag == query.tag)
    )


def sums_by(session: Session, query: ReportQuery, group: str | None) -> list[dict[str, Any]]:
    """The measure sums of the query's conversations, grouped by ``group`` (a dimension or
    ``day``; None: one row). From the daily sums, or from the facts when a tag is asked for."""
    if query.tag is None:
        source: Any = D
        values: dict[str, ColumnElement[Any]] = {n: func.sum(D[n]) for n in MEASURE_COLUMNS}
        conditions = _filters(query, D)
    else:
        source = F
        values = _fact_sums()
        conditions = [*_filters(query, F), _tagged(query)]
    keys = [source[group].label("key")] if group else []
    statement: Select[Any] = select(*keys, *(v.label(n) for n, v in values.items())).where(
        *conditions
    )
    if group:
        statement = statement.group_by(source[group])
    rows = session.execute(statement).mappings()
    return [dict(row) for row in rows if row["conversations"]]


def pending_fin_resolutions_by_day(
    session: Session, query: ReportQuery, since: datetime
) -> dict[date, int]:
    """Fin resolutions at or after ``since`` (their reopen window still running) that have not
    come back: neither reopened nor durable yet."""
    conditions = [*_filters(query, F), F.fin_resolved_at >= since, F.came_back_at.is_(None)]
    if query.tag is not None:
        conditions.append(_tagged(query))
    rows = session.execute(select(F.day, func.count()).where(*conditions).group_by(F.day))
    return {day: count for day, count in rows}


def agent_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    rows = session.execute(select(Agent.id, Agent.name, Agent.email).where(Agent.id.in_(set(ids))))
    return {id: name or email or id for id, name, email in rows}


def fact_rows(session: Session, query: ReportQuery, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """The query's facts, oldest first, read in batches (keyset on created_at, id)."""
    conditions = _filters(query, F)
    if query.tag is not None:
        conditions.append(_tagged(query))
    after: tuple[datetime, str] | None = None
    while True:
        statement = select(ReportFact.__table__).where(*conditions)
        if after is not None:
            statement = statement.where(
                (F.created_at > after[0])
                | and_(F.created_at == after[0], F.conversation_id > after[1])
            )
        rows = (
            session.execute(statement.order_by(F.created_at, F.conversation_id).limit(batch))
            .mappings()
            .all()
        )
        yield from (dict(row) for row in rows)
        if len(rows) < batch:
            return
        after = (rows[-1]["created_at"], rows[-1]["conversation_id"])


def count_facts(session: Session, query: ReportQuery) -> int:
    conditions = _filters(query, F)
    if query.tag is not None:
        conditions.append(_tagged(query))
    return session.scalar(select(func.count()).select_from(ReportFact).where(*conditions)) or 0


def ratings(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """The end users' ratings (1..5) of these conversations."""
    rows = session.execute(
        select(CsatRating.conversation_id, CsatRating.score).where(
            CsatRating.conversation_id.in_(ids), CsatRating.score.is_not(None)
        )
    )
    return {cid: score for cid, score in rows if score is not None}
