"""All SQL of the Reporting Data Export: its jobs and their rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from findesk.intercom_export.models import IntercomReportJob, IntercomReportRow


def job_for_range(
    session: Session, dataset_id: str, start: datetime, end: datetime
) -> IntercomReportJob | None:
    return session.scalars(
        select(IntercomReportJob).where(
            IntercomReportJob.dataset_id == dataset_id,
            IntercomReportJob.range_start == start,
            IntercomReportJob.range_end == end,
        )
    ).one_or_none()


def get_for_update(session: Session, job_id: int) -> IntercomReportJob | None:
    return session.scalars(
        select(IntercomReportJob).where(IntercomReportJob.id == job_id).with_for_update()
    ).one_or_none()


def pending_jobs(session: Session) -> Sequence[IntercomReportJob]:
    """findesk's jobs Intercom is working on (enqueued, not downloaded), oldest first."""
    return session.scalars(
        select(IntercomReportJob)
        .where(IntercomReportJob.status == "pending")
        .order_by(IntercomReportJob.enqueued_at, IntercomReportJob.id)
    ).all()


def jobs(session: Session, job_ids: Sequence[int]) -> Sequence[IntercomReportJob]:
    if not job_ids:
        return []
    return session.scalars(
        select(IntercomReportJob)
        .where(IntercomReportJob.id.in_(job_ids))
        .order_by(IntercomReportJob.range_start, IntercomReportJob.id)
    ).all()


def replace_rows(session: Session, job_id: int, rows: list[dict[str, Any]]) -> None:
    session.execute(delete(IntercomReportRow).where(IntercomReportRow.job_id == job_id))
    session.add_all(IntercomReportRow(job_id=job_id, **row) for row in rows)


def rows_between(
    session: Session, dataset_id: str, start: datetime, end: datetime
) -> Sequence[IntercomReportRow]:
    """The stored rows of conversations started in [start, end), oldest first."""
    return session.scalars(
        select(IntercomReportRow)
        .join(IntercomReportJob, IntercomReportJob.id == IntercomReportRow.job_id)
        .where(
            IntercomReportJob.dataset_id == dataset_id,
            IntercomReportRow.started_at >= start,
            IntercomReportRow.started_at < end,
        )
        .order_by(IntercomReportRow.started_at, IntercomReportRow.id)
    ).all()


def count_rows(session: Session, job_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(IntercomReportRow)
            .where(IntercomReportRow.job_id == job_id)
        )
        or 0
    )


# --- findesk's side, for reconciliation -----------------------------------------------------

CHUNK = 500  # ids per IN (...) list


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def conversations_by_reference(
    session: Session, ids: Sequence[str], object_ids: Sequence[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """``({id: id}, {object_id: id})`` of the findesk conversations among ``ids`` (findesk's
    own ids) and ``object_ids`` (the ids the creator gave them: Intercom's, for Fin's)."""
    from findesk.conversations.models import Conversation

    by_id: dict[str, str] = {}
    by_object: dict[str, str] = {}
    for chunk in _chunks(list(ids)):
        by_id.update(
            (cid, cid)
            for cid in session.scalars(select(Conversation.id).where(Conversation.id.in_(chunk)))
        )
    for chunk in _chunks(list(object_ids)):
        rows = session.execute(
            select(Conversation.object_id, Conversation.id).where(Conversation.object_id.in_(chunk))
        )
        by_object.update((str(object_id), cid) for object_id, cid in rows)
    return by_id, by_object


def handovers(session: Session, conversation_ids: Sequence[str]) -> list[tuple[str, datetime]]:
    """``(conversation_id, at)`` of every handover in these conversations, oldest first."""
    from findesk.conversations.models import ConversationEvent

    found: list[tuple[str, datetime]] = []
    for chunk in _chunks(list(conversation_ids)):
        rows = session.execute(
            select(ConversationEvent.conversation_id, ConversationEvent.at)
            .where(
                ConversationEvent.conversation_id.in_(chunk),
                ConversationEvent.kind == "handover",
            )
            .order_by(ConversationEvent.at, ConversationEvent.id)
        )
        found.extend((str(c), at) for c, at in rows)
    return found


def public_messages(
    session: Session, conversation_ids: Sequence[str]
) -> list[tuple[str, str, bool, str | None, datetime]]:
    """``(conversation_id, author_type, by_fin, author name, created_at)`` of every public
    message in these conversations, oldest first."""
    from findesk.agents.models import Agent
    from findesk.conversations.models import Message

    found: list[tuple[str, str, bool, str | None, datetime]] = []
    for chunk in _chunks(list(conversation_ids)):
        rows = session.execute(
            select(
                Message.conversation_id,
                Message.author_type,
                Agent.is_bot,
                Agent.name,
                Message.created_at,
            )
            .outerjoin(Agent, Agent.id == Message.author_agent_id)
            .where(Message.conversation_id.in_(chunk), Message.visibility == "public")
            .order_by(Message.seq)
        )
        found.extend((str(c), str(t), bool(bot), name, at) for c, t, bot, name, at in rows)
    return found


def others_opened(session: Session, conversation_ids: Sequence[str]) -> list[tuple[str, datetime]]:
    """``(conversation_id, created_at)`` of every other conversation of the same end user (a
    visitor merged into the user included: merging moves the conversations)."""
    from sqlalchemy.orm import aliased

    from findesk.conversations.models import Conversation

    other = aliased(Conversation)
    found: list[tuple[str, datetime]] = []
    for chunk in _chunks(list(conversation_ids)):
        rows = session.execute(
            select(Conversation.id, other.created_at)
            .join(other, (other.user_id == Conversation.user_id) & (other.id != Conversation.id))
            .where(Conversation.id.in_(chunk))
        )
        found.extend((str(c), at) for c, at in rows)
    return found
