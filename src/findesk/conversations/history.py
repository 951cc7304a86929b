"""The durable history of a conversation: one row per change, written in the change's own
transaction, never purged, never edited. The inbox's timeline and ``/history`` read it.

Ownership events carry the assignee before and after (agent ids, None for nobody), so that the
history replays to the conversation's current owner (``owner_after``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from findesk.conversations import repository
from findesk.conversations.models import ConversationEvent
from findesk.kit.actor import Actor
from findesk.kit.timeutil import utcnow

# The assignee changes: each has the owner before and after in from_value and to_value.
OWNERSHIP_KINDS = frozenset({"handover", "take_over", "hand_back", "assigned"})


def record(
    session: Session,
    conversation_id: str,
    kind: str,
    actor: Actor,
    *,
    from_value: Any = None,
    to_value: Any = None,
    detail: dict[str, Any] | None = None,
) -> ConversationEvent:
    event = ConversationEvent(
        conversation_id=conversation_id,
        kind=kind,
        actor=actor.kind,
        actor_agent_id=actor.agent_id,
        from_value=from_value,
        to_value=to_value,
        detail=detail or {},
        at=utcnow(),
    )
    session.add(event)
    return event


def events(
    session: Session, conversation_id: str, *, after_id: int = 0, limit: int | None = None
) -> Sequence[ConversationEvent]:
    return repository.history(session, conversation_id, after_id=after_id, limit=limit)


def between(
    session: Session, conversation_id: str, *, since: datetime | None, until: datetime | None
) -> Sequence[ConversationEvent]:
    """The changes from ``since`` (inclusive) until ``until`` (exclusive), oldest first; None
    leaves that side open (a page of messages: ``MessagePage.changes_since``, ``_until``)."""
    return repository.history_between(session, conversation_id, since=since, until=until)


def owner_after(history: Iterable[ConversationEvent]) -> str | None:
    """The assignee the history ends with: the creation's, then each applied ownership change."""
    owner: str | None = None
    for event in history:
        if event.kind == "created":
            owner = (event.to_value or {}).get("assignee_id")
        elif event.kind in OWNERSHIP_KINDS:
            owner = event.to_value
    return owner
