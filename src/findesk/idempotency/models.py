"""The answers given to requests that carried an ``Idempotency-Key``, kept for a day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class IdempotencyKey(Base):
    """One key of one agent, written in the transaction of the change the request made: a
    committed row always holds the response; a request that failed left none."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, path, query and (canonical JSON) body: what "the same request" is.
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(2048))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    # The headers a replay repeats (content type, location).
    response_headers: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
