"""Recording what Fin must hear about, inside the transaction that made the change, and
operating the outbox (status, listing, replay).

A committed transaction that recorded events wakes the delivery workers of this process at once;
workers elsewhere find the events when they next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.orm import Session

from findesk.conversations import repository as conversation_repository
from findesk.kit.actor import Actor
from findesk.kit.errors import NotFound
from findesk.kit.timeutil import as_utc, utcnow
from findesk.notifier import repository
from findesk.notifier.metrics import EVENTS_RECORDED
from findesk.notifier.models import OutboxEvent

_RECORDED = "findesk_outbox_recorded"
_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def record_change(session: Session, conversation_id: str, reason: str, actor: Actor) -> None:
    """Queue a sync event for ``conversation_id``; Fin's own changes are not echoed back."""
    if actor.is_fin:
        return
    session.add(OutboxEvent(conversation_id=conversation_id, reason=reason))
    session.info[_RECORDED] = session.info.get(_RECORDED, 0) + 1


def on_commit(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after every commit that recorded events; returns an unsubscriber."""
    with _listeners_lock:
        _listeners.append(callback)

    def unsubscribe() -> None:
        with _listeners_lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return unsubscribe


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    recorded = session.info.pop(_RECORDED, 0)
    if not recorded:
        return
    EVENTS_RECORDED.inc(recorded)
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_RECORDED, None)


@dataclass(frozen=True)
class OutboxStatus:
    counts: dict[str, int]
    oldest_pending_age_seconds: float | None


def status(session: Session, now: datetime | None = None) -> OutboxStatus:
    now = now or utcnow()
    counts = {state: 0 for state in (repository.PENDING, repository.DELIVERED, repository.DEAD)}
    counts |= repository.counts_by_state(session)
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
    conversation means Fin should hear about it again.
    """
    if conversation_id is not None and not conversation_repository.conversation_exists(
        session, conversation_id
    ):
        raise NotFound(f"No conversation with id {conversation_id!r}.")
    states = [repository.PENDING, repository.DEAD] if dead else [repository.PENDING]
    count = repository.replay(session, states=states, conversation_id=conversation_id, now=utcnow())
    if count == 0 and conversation_id is not None:
        session.add(OutboxEvent(conversation_id=conversation_id, reason="replay"))
        session.info[_RECORDED] = session.info.get(_RECORDED, 0) + 1
        count = 1
    return count
