"""Recording what Fin must hear about, inside the transaction that made the change, and
operating the outbox (status, listing, replay).

A committed transaction that recorded events wakes the delivery workers of this process at once;
workers elsewhere find the events when they next poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from findesk.conversations import repository as conversation_repository
from findesk.kit.actor import Actor
from findesk.kit.commit_signal import CommitSignal
from findesk.kit.errors import Invalid, NotFound
from findesk.kit.timeutil import as_utc, utcnow
from findesk.notifier import repository
from findesk.notifier.metrics import EVENTS_RECORDED
from findesk.notifier.models import OutboxEvent

# Wakes this process's delivery workers as soon as events are committed.
recorded = CommitSignal("outbox")
recorded.subscribe(EVENTS_RECORDED.inc)


def record_change(session: Session, conversation_id: str, reason: str, actor: Actor) -> None:
    """Queue a sync event for ``conversation_id``; Fin's own changes are not echoed back, and
    findesk's own chat (``findesk.chat``) is never announced: Fin meets it there only."""
    if actor.is_fin:
        return
    if conversation_repository.channel_of(session, conversation_id) == "chat":
        return
    session.add(OutboxEvent(conversation_id=conversation_id, reason=reason))
    recorded.mark(session)


@dataclass(frozen=True)
class OutboxStatus:
    counts: dict[str, int]
    oldest_pending_age_seconds: float | None


def status(
    session: Session, now: datetime | None = None, *, delivered: bool = True
) -> OutboxStatus:
    """Events by state and the age of the oldest pending one. Without ``delivered``, the queue
    alone (pending and dead, off the state index): what a scrape every few seconds asks for,
    while the delivered events a week keeps are millions to count."""
    now = now or utcnow()
    states = [repository.PENDING, repository.DELIVERED, repository.DEAD]
    if not delivered:
        states.remove(repository.DELIVERED)
    counts = {state: 0 for state in states}
    counts |= repository.counts_by_state(session, states)
    oldest = repository.oldest_pending_created_at(session)
    age = (now - as_utc(oldest)).total_seconds() if oldest else None
    return OutboxStatus(counts, age)


def list_events(
    session: Session,
    *,
    state: str | None = None,
    conversation_id: str | None = None,
    limit: int = 50,
) -> Sequence[OutboxEvent]:
    return repository.listing(session, state=state, conversation_id=conversation_id, limit=limit)


def replay(session: Session, *, dead: bool, conversation_id: str | None) -> int:
    """Make pending events (and dead ones with ``dead``) due now with a fresh retry window.

    For one conversation with nothing left to replay, record a fresh event: asking to replay a
    conversation means Fin should hear about it again (not for a chat conversation, which Fin's
    webhook never announces: that is refused, 422).
    """
    channel = None
    if conversation_id is not None:
        channel = conversation_repository.channel_of(session, conversation_id)
        if channel is None:
            raise NotFound(f"No conversation with id {conversation_id!r}.")
    states = [repository.PENDING, repository.DEAD] if dead else [repository.PENDING]
    count = repository.replay(session, states=states, conversation_id=conversation_id, now=utcnow())
    if count == 0 and channel == "chat":
        raise Invalid(
            f"{conversation_id} is a chat conversation with nothing to replay: Fin hears about "
            "it through the chat's channel, never through its webhook."
        )
    if count == 0 and conversation_id is not None:
        session.add(OutboxEvent(conversation_id=conversation_id, reason="replay"))
        recorded.mark(session)
        count = 1
    return count
