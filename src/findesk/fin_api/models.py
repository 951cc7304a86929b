"""What the Fin API keeps: the request signatures it has accepted, to refuse their replay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, UTCDateTime


class SeenRequestSignature(Base):
    """A signed Fin API call that was accepted, until its signature can no longer be valid.

    Shared by every process through the database: the primary key makes a second use of the
    same signature fail, whichever process sees it."""

    __tablename__ = "seen_request_signatures"

    # SHA-256 (hex) of the signature's raw digest: one row whatever encoding the header used.
    digest_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # When the signed timestamp falls out of the tolerance window (plus a grace for clocks).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
