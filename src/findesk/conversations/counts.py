"""The inbox's queue counts, kept current: how many conversations have each status and assignee
(``conversation_counts``), changed in the transaction of every change that moves a conversation
between queues, so that the sidebar reads a few rows instead of counting the table each time.

Whichever action writes a conversation's status or assignee (or creates one), a session hook
sees it: a flush that changes either notes the conversation and its row as it was before this
transaction changed it (read locked, so no concurrent change can slip in between); just before
the transaction commits, the net moves (the row as it is now against the row as it was) are
added to the counts in one statement, its rows in key order. Applying them last keeps the count
rows locked only for the commit itself, and every transaction locks them after its
conversations and in one order, so that none waits on another in a circle. A savepoint rolled
back forgets what it noted. ``recount`` sets the counts from the table, should they ever drift
(a row written by hand, say).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, SessionTransaction

from findesk.conversations import repository
from findesk.conversations.models import Conversation
from findesk.conversations.repository import QueueKey

# Rows each (status, assignee) pair is spread over: concurrent changes of one queue (Fin
# starting conversations) mostly lock different rows. Reads sum them.
SHARDS = 8

_NOTED = "findesk_queue_moves"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Noted:
    before: QueueKey | None  # None: the conversation did not exist before this transaction
    # The transaction (or savepoint) in which it was noted: rolled back, it forgets the note.
    noted_in: SessionTransaction


def _noted(session: Session) -> dict[str, _Noted]:
    noted: dict[str, _Noted] = session.info.setdefault(_NOTED, {})
    return noted


def _current(session: Session) -> SessionTransaction:
    current = session.get_nested_transaction() or session.get_transaction()
    assert current is not None, "a flush runs in a transaction"
    return current


def _moves(conversation: Conversation) -> bool:
    attrs = inspect(conversation).attrs
    return any(attrs[name].history.has_changes() for name in ("status", "assignee_id", "assignee"))


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    noted = _noted(session)
    changed = {
        c.id
        for c in session.dirty
        if isinstance(c, Conversation) and c.id not in noted and _moves(c)
    }
    changed |= {c.id for c in session.deleted if isinstance(c, Conversation) and c.id not in noted}
    if not changed:
        return
    current = _current(session)
    before = repository.queue_keys(session, changed, lock=True)
    for conversation_id in changed:
        noted[conversation_id] = _Noted(before.get(conversation_id), current)


def _after_flush(session: Session, _context: Any) -> None:
    created = [c.id for c in session.new if isinstance(c, Conversation)]
    if not created:
        return
    noted, current = _noted(session), _current(session)
    for conversation_id in created:
        noted.setdefault(conversation_id, _Noted(None, current))


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    noted = session.info.get(_NOTED)
    if not noted:
        return
    if not previous.nested:
        session.info.pop(_NOTED, None)
        return
    for conversation_id in [k for k, v in noted.items() if _within(v.noted_in, previous)]:
        del noted[conversation_id]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_NOTED, None)


def pending(session: Session) -> dict[QueueKey, int]:
    """The moves this session's transaction has made and not yet added to the counts."""
    session.flush()
    noted = session.info.get(_NOTED)
    if not noted:
        return {}
    after = repository.queue_keys(session, noted)
    moves: Counter[QueueKey] = Counter()
    for conversation_id, note in noted.items():
        now = after.get(conversation_id)
        if now == note.before:
            continue
        if note.before is not None:
            moves[note.before] -= 1
        if now is not None:
            moves[now] += 1
    return {key: change for key, change in moves.items() if change}


def _before_commit(session: Session) -> None:
    # Also called when a savepoint is released: the moves wait for the transaction's own end.
    if session.in_nested_transaction():
        return
    moves = pending(session)
    session.info.pop(_NOTED, None)
    repository.add_to_counts(session, moves, shard=random.randrange(SHARDS))  # noqa: S311


def _after_commit(session: Session) -> None:
    if not session.in_nested_transaction() and session.info.pop(_NOTED, None):
        # Committed with a savepoint still open: the moves noted were not applied.
        log.error("queue counts not updated by a commit; run `findesk recount` to repair them")


event.listen(Session, "before_flush", _before_flush)
event.listen(Session, "after_flush", _after_flush)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "after_commit", _after_commit)
event.listen(Session, "after_soft_rollback", _after_soft_rollback)
event.listen(Session, "after_transaction_end", _after_transaction_end)


def _difference(
    kept: dict[QueueKey, int], counted: dict[QueueKey, int]
) -> dict[QueueKey, tuple[int, int]]:
    return {
        key: (kept.get(key, 0), counted.get(key, 0))
        for key in sorted(kept.keys() | counted.keys())
        if kept.get(key, 0) != counted.get(key, 0)
    }


def drift(session: Session) -> dict[QueueKey, tuple[int, int]]:
    """Where the kept counts differ from the table's, as (kept, counted) by (status,
    assignee); counts the whole table. Exact when both reads see one snapshot (SQLite's read
    transaction, PostgreSQL's REPEATABLE READ) or nothing changes meanwhile; ``recount`` holds
    changes off first."""
    return _difference(repository.kept_counts(session), repository.counted_counts(session))


def recount(session: Session) -> dict[QueueKey, tuple[int, int]]:
    """Set the counts from the table, after waiting for the changes in flight and holding off
    new ones until the transaction ends (a write session); where they were wrong, as
    ``drift`` says."""
    repository.hold_off_conversation_changes(session)
    counted = repository.counted_counts(session)
    wrong = _difference(repository.kept_counts(session), counted)
    if wrong:
        repository.replace_counts(session, counted)
    return wrong
