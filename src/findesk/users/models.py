"""End users: the customers who talk to Fin and to human agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow

Role = Literal["visitor", "user"]


class EndUser(Base):
    __tablename__ = "end_users"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.USER)
    )
    # The user's id in Intercom, given on create; unique so that repeated creates are idempotent.
    object_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Indexed for the inbox's merge suggestions (an end user of the same name).
    name: Mapped[str | None] = mapped_column(String(255), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    photo_url: Mapped[str | None] = mapped_column(String(2048))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def role(self) -> Role:
        """Derived, never stored: an end user without an email (an anonymous Messenger
        visitor, as Fin creates them) is a visitor; one with an email is a user."""
        return "visitor" if not self.email else "user"


# The kinds of id an alias stands for: our end-user id (``usr_…``, what Fin holds after
# create_user) and the object_id Fin created the end user with (its id in Intercom).
ALIAS_KINDS = ("id", "object_id")


class EndUserAlias(Base):
    """An id of an end user merged into another (``users.service.merge_into``), and the end
    user who answers to it now: Fin keeps the ids it already holds, so every lookup by id or
    object_id falls back to these. Never a chain: a later merge of the survivor repoints its
    aliases too."""

    __tablename__ = "end_user_aliases"
    __table_args__ = (CheckConstraint("kind IN ('id', 'object_id')", name="kind"),)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id", ondelete="CASCADE"), index=True)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
