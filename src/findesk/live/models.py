from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, UTCDateTime
from findesk.kit.timeutil import utcnow


class Activity(Base):
    """One change of one conversation. Append-only; the id orders the feed and lets a dropped
    live connection resume where it stopped (SSE ``Last-Event-ID``).

    On PostgreSQL a statement trigger (migration 0012) sends ``NOTIFY findesk_activity`` for
    every insert, delivered at commit: every process's live feed wakes (``live.broker``)."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_at", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    conversation_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))  # conversation, message, assignee, status, ...
    # Who owns the conversation after the change: fin, human or waiting (for handover notices).
    owner: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(16))  # fin, agent, system
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
