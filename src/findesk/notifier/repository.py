"""All outbox SQL: claiming due events under a lease, recording outcomes, status and replay.

Claims never wait on another worker's locks: on PostgreSQL the rows are picked with
``FOR UPDATE SKIP LOCKED``; on SQLite the write transaction itself is exclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from findesk.notifier.models import FIN_KIND, OutboxEvent, TypingSignal

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def _unleased(now: datetime) -> ColumnElement[bool]:
    return or_(OutboxEvent.lease_until.is_(None), OutboxEvent.lease_until < now)


def _backing_off(now: datetime) -> ColumnElement[bool]:
    """The event's conversation has an event still waiting out a back-off or a Retry-After."""
    other = aliased(OutboxEvent)
    return exists().where(
        other.conversation_id == OutboxEvent.conversation_id,
        other.state == PENDING,
        other.next_attempt_at > now,
    )


def claim(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    conversations: int,
    skip_locked: bool,
    fin: bool = True,
) -> Sequence[OutboxEvent]:
    """Lease every pending event of up to ``conversations`` conversations that have a due one.

    Without ``fin``, only alert events (webhooks, emails: ``kind`` other than ``fin``); their
    ``conversation_id`` is their grouping key, so this holds for them too.

    All of a conversation's pending events go together (one delivery covers them). A
    conversation waiting out a back-off (or Fin's Retry-After) is not due until it ends, even if
    it changed again meanwhile: the new events wait and go with that delivery.
    """
    due = (
        select(OutboxEvent.conversation_id)
        .where(
            OutboxEvent.state == PENDING,
            OutboxEvent.next_attempt_at <= now,
            _unleased(now),
            ~_backing_off(now),
            *_kinds(fin),
        )
        # Not also by id: with many events due at the same instant (a bulk backlog, a replay)
        # that tie-break made PostgreSQL sort every pending event on each claim, not read the
        # first few off ix_outbox_events_state_due. Ties still come out about oldest first.
        .order_by(OutboxEvent.next_attempt_at)
        .limit(conversations * 4)
    )
    candidates = list(dict.fromkeys(session.scalars(due)))
    if skip_locked and candidates:
        candidates = _try_lock_conversations(session, candidates, conversations)
    conversation_ids = candidates[:conversations]
    if not conversation_ids:
        return []
    rows = select(OutboxEvent.id).where(
        OutboxEvent.conversation_id.in_(conversation_ids),
        OutboxEvent.state == PENDING,
        _unleased(now),
    )
    if skip_locked:
        rows = rows.with_for_update(skip_locked=True)
    ids = list(session.scalars(rows))
    if not ids:
        return []
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(ids))
        .values(lease_owner=owner, lease_until=lease_until)
    )
    return session.scalars(
        select(OutboxEvent).where(OutboxEvent.id.in_(ids)).order_by(OutboxEvent.id)
    ).all()


# Namespace of the per-conversation advisory locks (two-int4 form: apart from the migrations').
_CLAIM_LOCK_NAMESPACE = 0x6F757462  # "outb"


def _try_lock_conversations(session: Session, candidates: list[str], limit: int) -> list[str]:
    """Of ``candidates``, in order, up to ``limit`` conversations that no other worker is
    claiming right now, each locked until this transaction ends (PostgreSQL).

    Row locks alone would not do: two workers locking the same conversation's events with SKIP
    LOCKED can each get some of them, and both deliver the conversation. A worker that gets the
    lock after another one committed its claim finds the events leased.
    """
    locked = session.scalars(
        text(
            "SELECT c FROM unnest(CAST(:ids AS text[])) AS t(c) "
            "WHERE pg_try_advisory_xact_lock(:ns, hashtext(c)) LIMIT :n"
        ),
        {"ids": candidates, "ns": _CLAIM_LOCK_NAMESPACE, "n": limit},
    )
    got = set(locked)
    return [c for c in candidates if c in got]


def _kinds(fin: bool) -> list[ColumnElement[bool]]:
    # Without Fin, the others' (alerts, chat) off their own partial index: Fin's events waiting
    # to be configured are never read. The literal, not a parameter, lets a prepared statement
    # on PostgreSQL see that the index applies.
    return [] if fin else [OutboxEvent.kind != bindparam("fin", FIN_KIND, literal_execute=True)]


def set_delivery_ids(session: Session, delivery_ids: Mapping[int, str]) -> None:
    """Give events their delivery id (by event id), in one statement; kept where one is set."""
    if not delivery_ids:
        return
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(list(delivery_ids)), OutboxEvent.delivery_id.is_(None))
        .values(delivery_id=case(dict(delivery_ids), value=OutboxEvent.id))
        .execution_options(synchronize_session=False)  # the caller has the ids already
    )


def mark_delivered(session: Session, ids: Sequence[int], owner: str, now: datetime) -> int:
    """Only rows still leased by ``owner``: a lease that ran out belongs to someone else now."""
    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(ids), OutboxEvent.lease_owner == owner)
        .values(state=DELIVERED, delivered_at=now, lease_owner=None, lease_until=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def mark_failed(
    session: Session,
    ids: Sequence[int],
    owner: str,
    *,
    now: datetime,
    dead: bool,
    next_attempt_at: datetime,
    error: str,
) -> int:
    result = session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(ids), OutboxEvent.lease_owner == owner)
        .values(
            state=DEAD if dead else PENDING,
            attempts=OutboxEvent.attempts + 1,
            next_attempt_at=next_attempt_at,
            first_failed_at=func.coalesce(OutboxEvent.first_failed_at, now),
            last_error=error[:2000],
            lease_owner=None,
            lease_until=None,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release(session: Session, ids: Sequence[int], owner: str) -> None:
    """Give events back untouched (a worker stopping before it could deliver them)."""
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(ids), OutboxEvent.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def next_due_at(session: Session, now: datetime, *, fin: bool = True) -> datetime | None:
    """When the next event this worker could claim is due (leased ones are their owner's;
    one due now in a conversation that is backing off is due when that back-off ends)."""
    return session.scalar(
        select(func.min(OutboxEvent.next_attempt_at)).where(
            OutboxEvent.state == PENDING,
            _unleased(now),
            or_(OutboxEvent.next_attempt_at > now, ~_backing_off(now)),
            *_kinds(fin),
        )
    )


def counts_by_state(session: Session, states: Sequence[str] | None = None) -> dict[str, int]:
    """Events by state: of ``states`` only (off the state index), or of every state."""
    query = select(OutboxEvent.state, func.count()).group_by(OutboxEvent.state)
    if states is not None:
        query = query.where(OutboxEvent.state.in_(states))
    rows = session.execute(query).all()
    return {state: int(count) for state, count in rows}


def oldest_pending_created_at(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(OutboxEvent.created_at)).where(OutboxEvent.state == PENDING)
    )


def listing(
    session: Session, *, state: str | None, conversation_id: str | None, limit: int
) -> Sequence[OutboxEvent]:
    query = select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(limit)
    if state:
        query = query.where(OutboxEvent.state == state)
    if conversation_id:
        query = query.where(OutboxEvent.conversation_id == conversation_id)
    return session.scalars(query).all()


def replay(
    session: Session, *, states: Sequence[str], conversation_id: str | None, now: datetime
) -> int:
    """Make matching events due now, with a fresh retry window."""
    query = update(OutboxEvent).where(OutboxEvent.state.in_(states))
    if conversation_id:
        query = query.where(OutboxEvent.conversation_id == conversation_id)
    result = session.execute(
        query.values(
            state=PENDING,
            attempts=0,
            next_attempt_at=now,
            first_failed_at=None,
            delivery_id=None,  # a replay is a new delivery, traced under a new id
            lease_owner=None,
            lease_until=None,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge_delivered(session: Session, before: datetime) -> int:
    result = session.execute(
        delete(OutboxEvent).where(OutboxEvent.state == DELIVERED, OutboxEvent.delivered_at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- typing signals ------------------------------------------------------------------------------


def claim_typing(
    session: Session, conversation_id: str, agent_id: str, now: datetime, cutoff: datetime
) -> bool:
    """Mark the typing event as sent at ``now`` unless one was sent after ``cutoff``; whether
    it was marked (one statement: of processes asking at once, one wins)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(TypingSignal).values(
        conversation_id=conversation_id, agent_id=agent_id, sent_at=now
    )
    claimed = session.execute(
        statement.on_conflict_do_update(
            index_elements=[TypingSignal.conversation_id, TypingSignal.agent_id],
            set_={"sent_at": statement.excluded.sent_at},
            where=TypingSignal.sent_at <= cutoff,
        ).returning(TypingSignal.agent_id)
    ).first()
    return claimed is not None


def prune_typing(session: Session, before: datetime) -> int:
    result = session.execute(delete(TypingSignal).where(TypingSignal.sent_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
