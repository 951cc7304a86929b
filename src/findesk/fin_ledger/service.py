"""Receipts of what Fin fetched, and the ledger of its calls."""

from __future__ import annotations

from sqlalchemy.orm import Session

from findesk.conversations.models import Message
from findesk.fin_ledger.models import PendingFetch


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
