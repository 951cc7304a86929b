from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, UTCDateTime


class ThrottleCounter(Base):
    """Recent failures of one subject (an account and address pair, an address, an account),
    and until when its next attempt must wait."""

    __tablename__ = "throttle_counters"

    # SHA-256 of the scope and the subject: emails and addresses are not kept in the clear, and
    # a subject of any length fits.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A pair that succeeded lately is known: the looser, wider counters do not hold it back.
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
