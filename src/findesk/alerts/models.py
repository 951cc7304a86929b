from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class WebhookEndpoint(Base):
    """Where an admin asked findesk to send events, in which format, signed with which secret.

    Signing needs the secret itself (HMAC), so it cannot be kept hashed: it is derived from the
    server's key and ``secret_nonce`` (``alerts.service.signing_secret``), and the database holds
    the nonce only. It is shown once, when created.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    format: Mapped[str] = mapped_column(String(16), default="json")  # json | slack
    secret_nonce: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertPreference(Base):
    """Which emails an agent wants, and whether at once or gathered in a digest."""

    __tablename__ = "alert_preferences"

    agent_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    email_handover: Mapped[bool] = mapped_column(Boolean, default=False)
    email_assigned: Mapped[bool] = mapped_column(Boolean, default=True)
    # None: each email at once; N: gathered and sent every N minutes.
    digest_minutes: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
