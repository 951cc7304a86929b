from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, UTCDateTime


class CsatRating(Base):
    """A conversation's rating request and, once the end user answers, its rating.

    One row per conversation, ever: written with the request (``score`` None until rated). The
    link's token is kept only as its SHA-256 (``findesk.kit.secrets``). The reports read these
    columns; ``rated_at`` is indexed for their refresh (ratings newer than a watermark)."""

    __tablename__ = "csat_ratings"
    __table_args__ = (
        CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)", name="score"),
    )

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The agent the request was written as (the Fin bot for a Fin-resolved conversation).
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
