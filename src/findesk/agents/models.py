from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, UTCDateTime
from findesk.kit.timeutil import utcnow


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.AGENT)
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # The name end users see instead of the real one.
    alias: Mapped[str | None] = mapped_column(String(255))
    photo_url: Mapped[str | None] = mapped_column(String(2048))
    # The bot agent chosen in Fin's setup to author Fin's replies.
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str] = mapped_column(String(16), default="agent")  # agent | admin
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # online | away | offline, as the agent set it (``teams.service.effective_presence`` turns an
    # online agent silent for a while into away); routing gives conversations to online ones.
    presence: Mapped[str] = mapped_column(
        String(16), default="offline", server_default=text("'offline'")
    )
    # When the agent last said they were there (set presence, or the inbox's heartbeat).
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Open conversations routing may give them at once; None: their team's default.
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
