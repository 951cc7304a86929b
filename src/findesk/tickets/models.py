from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow
from findesk.users.models import EndUser

# Intercom's names for the three kinds of ticket: only a customer ticket is shared with the end
# user, and only a conversation may become one (``service.convert``).
CATEGORIES = ("Customer", "Back-office", "Tracker")
DATA_TYPES = ("string", "number", "boolean", "date", "list")
STATE_CATEGORIES = ("submitted", "in_progress", "waiting_on_customer", "resolved")
TITLE = "_default_title_"
DESCRIPTION = "_default_description_"
# The conversation attribute that tells Fin about the conversation's ticket (id, ticket_id,
# type, state: the external label, open).
FIN_ATTRIBUTE = "ticket"


class TicketType(Base):
    """What a ticket is about (a refund, a bug), with the attributes its tickets carry.

    ``attributes`` lists dicts as ``schemas.TicketTypeAttribute`` describes them, the two
    defaults (``_default_title_``, ``_default_description_``) first. Each has a stable ``id``;
    a list attribute's items (``list_items``) too: tickets store a list value as the item's id.
    An attribute is never removed, only archived, so every stored value keeps its meaning.
    """

    __tablename__ = "ticket_types"
    __table_args__ = (
        CheckConstraint("category IN ('Customer', 'Back-office', 'Tracker')", name="category"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.TICKET_TYPE)
    )
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    icon: Mapped[str] = mapped_column(String(64), default="🎟️")
    category: Mapped[str] = mapped_column(String(16), default="Customer")
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TicketState(Base):
    """Where a ticket stands. The internal label is the team's; the external one is what the
    end user (and Fin, through the conversation's ``ticket`` attribute) is told. Seeded by the
    migration, one per category."""

    __tablename__ = "ticket_states"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    internal_label: Mapped[str] = mapped_column(String(255))
    external_label: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    """A ticket. ``number`` is its short public number (Intercom's ``ticket_id``); a ticket made
    from a conversation links to it (``conversation_id``, at most one ticket a conversation) and
    keeps its thread there."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_state_updated", "state_id", "updated_at"),
        Index("ix_tickets_type_updated", "ticket_type_id", "updated_at"),
        Index("ix_tickets_updated", "updated_at"),
        # An end user's tickets: a merge moves them, deleting the user nulls them.
        Index("ix_tickets_user", "user_id"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.TICKET)
    )
    number: Mapped[int] = mapped_column(Integer, unique=True)
    ticket_type_id: Mapped[str] = mapped_column(ForeignKey("ticket_types.id"))
    state_id: Mapped[str] = mapped_column(ForeignKey("ticket_states.id"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), unique=True
    )
    user_id: Mapped[str | None] = mapped_column(ForeignKey("end_users.id", ondelete="SET NULL"))
    # A customer ticket linked to the tracker ticket of the problem behind it (a bug): the
    # tracker's state changes move it too (``service.update_ticket``).
    tracker_id: Mapped[str | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket_type: Mapped[TicketType] = relationship(lazy="joined", innerjoin=True)
    state: Mapped[TicketState] = relationship(lazy="joined", innerjoin=True)
    user: Mapped[EndUser | None] = relationship(lazy="joined")
