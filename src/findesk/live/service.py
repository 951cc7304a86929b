"""Recording activity (in the transaction of the change) and reading the feed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from findesk.kit.actor import Actor
from findesk.live.models import Activity

_RECORDED = "findesk_activity_recorded"
_listeners: list[Callable[[], None]] = []
_lock = threading.Lock()


def record(
    session: Session, conversation_id: str, kind: str, actor: Actor, owner: str | None
) -> None:
    session.add(Activity(conversation_id=conversation_id, kind=kind, actor=actor.kind, owner=owner))
    session.info[_RECORDED] = True


def on_commit(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after every commit that recorded activity; returns an unsubscriber."""
    with _lock:
        _listeners.append(callback)

    def unsubscribe() -> None:
        with _lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return unsubscribe


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_RECORDED, False):
        with _lock:
            callbacks = list(_listeners)
        for callback in callbacks:
            callback()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_RECORDED, None)


def after(session: Session, after_id: int, limit: int = 500) -> Sequence[Activity]:
    return session.scalars(
        select(Activity).where(Activity.id > after_id).order_by(Activity.id).limit(limit)
    ).all()


def last_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Activity.id))) or 0)


def purge(session: Session, before: datetime) -> int:
    result = session.execute(delete(Activity).where(Activity.at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
