"""The ledger's SQL: Fin API calls, pending fetches and the receipts on messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from findesk.conversations.models import Message
from findesk.fin_ledger.models import FinCall, PendingFetch

# Well under every backend's limit of bound parameters in one statement.
CHUNK = 500


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def add_calls(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:  # a Core executemany: no ORM bulk-insert bookkeeping for a batch of thousands
        session.connection().execute(insert(cast(Table, FinCall.__table__)), list(rows))


def pending_among(session: Session, message_ids: Sequence[str]) -> dict[str, str]:
    """Of these messages, the ones waiting for Fin: message id -> conversation id."""
    found: dict[str, str] = {}
    for chunk in _chunks(message_ids):
        query = select(PendingFetch.message_id, PendingFetch.conversation_id).where(
            PendingFetch.message_id.in_(chunk)
        )
        found.update({row.message_id: row.conversation_id for row in session.execute(query)})
    return found


def mark_seen(session: Session, seen_at: Mapping[str, datetime]) -> None:
    """Set ``seen_by_fin_at`` on each message that has none yet (the first fetch wins)."""
    if not seen_at:
        return
    messages = cast(Table, Message.__table__)
    statement = (
        update(messages)
        .where(messages.c.id == bindparam("message_id"), messages.c.seen_by_fin_at.is_(None))
        .values(seen_by_fin_at=bindparam("seen_at"))
    )
    session.execute(statement, [{"message_id": key, "seen_at": at} for key, at in seen_at.items()])


def delete_pending(session: Session, message_ids: Sequence[str]) -> None:
    for chunk in _chunks(message_ids):
        session.execute(delete(PendingFetch).where(PendingFetch.message_id.in_(chunk)))


def pending_of_conversation(session: Session, conversation_id: str) -> dict[str, datetime]:
    """The conversation's replies waiting for Fin: message id -> when written."""
    query = select(PendingFetch.message_id, PendingFetch.created_at).where(
        PendingFetch.conversation_id == conversation_id
    )
    return {row.message_id: row.created_at for row in session.execute(query)}


# Built once: the inbox's Fin alert asks on every page.
_COUNT_PENDING_BEFORE = (
    select(func.count()).select_from(PendingFetch).where(PendingFetch.created_at < bindparam("at"))
)
_OLDEST_PENDING = (
    select(PendingFetch).order_by(PendingFetch.created_at, PendingFetch.message_id).limit(1)
)
_FIRST_PENDING_SINCE = select(func.min(PendingFetch.created_at)).where(
    PendingFetch.created_at >= bindparam("at")
)


def count_pending_before(session: Session, before: datetime) -> int:
    return int(session.scalar(_COUNT_PENDING_BEFORE, {"at": before}) or 0)


def oldest_pending(session: Session) -> PendingFetch | None:
    return session.scalars(_OLDEST_PENDING).first()


def first_pending_since(session: Session, since: datetime) -> datetime | None:
    value: datetime | None = session.scalar(_FIRST_PENDING_SINCE, {"at": since})
    return value


def delete_calls_before(session: Session, before: datetime) -> int:
    result = session.execute(delete(FinCall).where(FinCall.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_pending_before(session: Session, before: datetime) -> int:
    result = session.execute(delete(PendingFetch).where(PendingFetch.created_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
