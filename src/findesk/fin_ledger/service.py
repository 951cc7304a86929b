"""Receipts of what Fin fetched, and the ledger of its calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from findesk.conversations.models import Message
from findesk.fin_ledger import repository
from findesk.fin_ledger.calls import CallRecord
from findesk.fin_ledger.metrics import RECEIPTS
from findesk.fin_ledger.models import PendingFetch
from findesk.kit.actor import SYSTEM
from findesk.kit.timeutil import as_utc, utcnow
from findesk.live import service as live

GET_MESSAGES = "get_messages"
# A get_messages without after_id returns a whole conversation: the row keeps its newest ids
# (receipts use every id returned, before the row is written).
MAX_STORED_IDS = 200
SEEN_BY_FIN = "seen_by_fin"  # the live-feed kind: the inbox refreshes the conversation


def expect_fetch(session: Session, message: Message) -> None:
    """A human's public reply: Fin must fetch it; until it does, it is pending (in the change's
    own transaction, so a reply is never without its receipt slot)."""
    session.add(
        PendingFetch(
            message_id=message.id,
            conversation_id=message.conversation_id,
            created_at=message.created_at,
        )
    )


def record_calls(session: Session, calls: Sequence[CallRecord]) -> int:
    """Write a batch of calls to the ledger, and the receipts of the pending replies that their
    get_messages returned (at the first call that returned each); how many receipts."""
    repository.add_calls(
        session,
        [
            {
                "at": call.at,
                "operation": call.operation,
                "client_id": call.client_id,
                "conversation_id": call.conversation_id,
                "user_id": call.user_id,
                "after_id": call.after_id,
                "message_ids": call.message_ids[-MAX_STORED_IDS:],
                "status_code": call.status_code,
                "duration_ms": call.duration_ms,
            }
            for call in calls
        ],
    )
    first_seen: dict[str, datetime] = {}
    for call in calls:
        if call.operation != GET_MESSAGES:
            continue
        for message_id in call.message_ids:
            seen = first_seen.get(message_id)
            if seen is None or call.at < seen:
                first_seen[message_id] = call.at
    if not first_seen:
        return 0
    pending = repository.pending_among(session, list(first_seen))
    if not pending:
        return 0
    repository.mark_seen(session, {message_id: first_seen[message_id] for message_id in pending})
    repository.delete_pending(session, list(pending))
    for conversation_id in sorted(set(pending.values())):
        live.record(session, conversation_id, SEEN_BY_FIN, SYSTEM, None)
    RECEIPTS.inc(len(pending))
    return len(pending)


def prune(session: Session, retention: timedelta, now: datetime | None = None) -> tuple[int, int]:
    """Forget calls older than ``retention``, and replies that waited for Fin longer than that;
    how many of each."""
    before = (now or utcnow()) - retention
    return (
        repository.delete_calls_before(session, before),
        repository.delete_pending_before(session, before),
    )


def pending_fetches(session: Session, conversation_id: str) -> dict[str, datetime]:
    """The conversation's public human replies that Fin has not fetched: id -> written at."""
    return repository.pending_of_conversation(session, conversation_id)


@dataclass(frozen=True)
class Unfetched:
    """The human replies Fin has not fetched, as the alert sees them."""

    overdue: int  # waiting longer than the alert window
    oldest_at: datetime | None  # when the longest-waiting one was written
    oldest_conversation_id: str | None
    next_due_at: datetime | None  # when the next one that is not overdue yet becomes overdue
    now: datetime

    @property
    def oldest_age_seconds(self) -> float:
        return 0.0 if self.oldest_at is None else (self.now - self.oldest_at).total_seconds()

    @property
    def next_due_in_seconds(self) -> float | None:
        if self.next_due_at is None:
            return None
        return max(0.0, (self.next_due_at - self.now).total_seconds())


def unfetched(session: Session, alert_after: timedelta, now: datetime | None = None) -> Unfetched:
    now = now or utcnow()
    threshold = now - alert_after
    oldest = repository.oldest_pending(session)
    first_since = repository.first_pending_since(session, threshold)
    return Unfetched(
        overdue=repository.count_pending_before(session, threshold),
        oldest_at=None if oldest is None else as_utc(oldest.created_at),
        oldest_conversation_id=None if oldest is None else oldest.conversation_id,
        next_due_at=None if first_since is None else as_utc(first_since) + alert_after,
        now=now,
    )
