"""Recording what Fin must hear about, inside the transaction that made the change."""

from __future__ import annotations

from sqlalchemy.orm import Session

from findesk.kit.actor import Actor
from findesk.notifier.models import OutboxEvent


def record_change(session: Session, conversation_id: str, reason: str, actor: Actor) -> None:
    """Queue a sync event for ``conversation_id``; Fin's own changes are not echoed back."""
    if actor.is_fin:
        return
    session.add(OutboxEvent(conversation_id=conversation_id, reason=reason))
