"""Recording activity (in the transaction of the change) and reading the feed."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from findesk.conversations.models import Conversation
from findesk.kit.actor import Actor
from findesk.kit.commit_signal import CommitSignal
from findesk.live.models import Activity

# Wakes this process's live feed as soon as activity is committed. Other processes hear of it
# from PostgreSQL: a trigger on the table sends NOTIFY findesk_activity (see live.broker).
recorded = CommitSignal("activity")


def record(
    session: Session, conversation_id: str, kind: str, actor: Actor, owner: str | None
) -> None:
    session.add(Activity(conversation_id=conversation_id, kind=kind, actor=actor.kind, owner=owner))
    recorded.mark(session)


def after(
    session: Session, after_id: int, limit: int = 500, also: Collection[int] = ()
) -> list[tuple[Activity, str | None]]:
    """Activity after ``after_id``, and any of the ids ``also`` (lower ones, looked for again
    as they may commit late), in id order; each with its conversation's end user (None when the
    row is about no conversation), so that a reader can tell whose it is without a query."""
    wanted = or_(Activity.id > after_id, Activity.id.in_(also)) if also else Activity.id > after_id
    query = (
        select(Activity, Conversation.user_id)
        .outerjoin(Conversation, Conversation.id == Activity.conversation_id)
        .where(wanted)
        .order_by(Activity.id)
        .limit(limit)
    )
    return [(row, user_id) for row, user_id in session.execute(query)]


def last_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Activity.id))) or 0)


def purge(session: Session, before: datetime) -> int:
    result = session.execute(delete(Activity).where(Activity.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
