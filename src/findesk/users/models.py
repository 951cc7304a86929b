from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class EndUser(Base):
    __tablename__ = "end_users"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.USER)
    )
    # The user's id in Intercom, given on create; unique so that repeated creates are idempotent.
    object_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    photo_url: Mapped[str | None] = mapped_column(String(2048))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
