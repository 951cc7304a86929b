"""All of the SLA code's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, Message
from findesk.sla.models import SlaPolicy, SlaTimer


def policy(session: Session, policy_id: str) -> SlaPolicy | None:
    return session.get(SlaPolicy, policy_id)


def policies(session: Session) -> Sequence[SlaPolicy]:
    return session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)).all()


def next_position(session: Session) -> int:
    highest = session.scalar(select(func.max(SlaPolicy.position)))
    return 0 if highest is None else int(highest) + 1


def timers(session: Session, conversation_id: str) -> list[SlaTimer]:
    return list(
        session.scalars(
            select(SlaTimer)
            .where(SlaTimer.conversation_id == conversation_id)
            .order_by(SlaTimer.id)
        )
    )


def timers_of(session: Session, conversation_ids: Sequence[str]) -> dict[str, list[SlaTimer]]:
    """The timers of these conversations (a queue's page), by conversation."""
    found: dict[str, list[SlaTimer]] = {}
    if not conversation_ids:
        return found
    rows = session.scalars(
        select(SlaTimer)
        .where(SlaTimer.conversation_id.in_(list(conversation_ids)))
        .order_by(SlaTimer.id)
    )
    for timer in rows:
        found.setdefault(timer.conversation_id, []).append(timer)
    return found


def timer_for_update(session: Session, timer_id: int) -> SlaTimer | None:
    """The timer, its row locked (PostgreSQL; SQLite has one writer), read after the lock."""
    statement = (
        select(SlaTimer).where(SlaTimer.id == timer_id).execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name != "sqlite":
        statement = statement.with_for_update()
    return session.scalar(statement)


def due(session: Session, now: datetime, limit: int) -> list[tuple[int, str]]:
    """Timers past due, not met, not breached, not paused, of open conversations: (id,
    conversation id), the most overdue first."""
    rows = session.execute(
        select(SlaTimer.id, SlaTimer.conversation_id)
        .join(Conversation, Conversation.id == SlaTimer.conversation_id)
        .where(
            SlaTimer.due_at <= now,
            SlaTimer.met_at.is_(None),
            SlaTimer.breached_at.is_(None),
            SlaTimer.paused_at.is_(None),
            Conversation.status == "open",
        )
        .order_by(SlaTimer.due_at, SlaTimer.id)
        .limit(limit)
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def recent_public_authors(session: Session, conversation_id: str, limit: int = 2) -> list[str]:
    """Who wrote the conversation's latest public messages, newest first: ``end_user`` or
    ``human`` (Fin's messages are left out: they never wait on the end user for a person)."""
    rows = session.execute(
        select(Message.author_type)
        .outerjoin(Agent, Agent.id == Message.author_agent_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.visibility == "public",
            (Agent.id.is_(None)) | (Agent.is_bot.is_(False)),
        )
        .order_by(Message.seq.desc())
        .limit(limit)
    )
    return ["end_user" if r[0] == "end_user" else "human" for r in rows]
