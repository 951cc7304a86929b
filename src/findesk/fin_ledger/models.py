from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class FinCall(Base):
    """One Fin API call. Observability, not state: pruned after the retention period."""

    __tablename__ = "fin_calls"
    __table_args__ = (
        Index("ix_fin_calls_at", "at"),
        Index("ix_fin_calls_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    operation: Mapped[str] = mapped_column(String(32))  # get_messages, update_conversation, ...
    client_id: Mapped[str | None] = mapped_column(String(64))
    # As the call named them: no foreign keys, a call about an unknown id is recorded too.
    conversation_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    after_id: Mapped[str | None] = mapped_column(String(255))
    message_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status_code: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)


class PendingFetch(Base):
    """A human's public reply that Fin has not fetched yet; deleted when a get_messages
    returns it. Small by construction: what is left here for long is what the alert is about."""

    __tablename__ = "fin_pending_fetches"
    __table_args__ = (Index("ix_fin_pending_fetches_created", "created_at"),)

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
