from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow

KINDS = (
    "object_by_external_id",
    "object_by_attribute",
    "user_open_tickets",
    "conversation_ticket_state",
)


class Lookup(Base):
    """A read of findesk's data that Fin may call (an Intercom Data Connector).

    ``inputs``: ``[{"name", "type", "description", "required"}]`` (Intercom's data inputs);
    ``fields``: ``[{"name", "redacted"}]``, what leaves findesk; ``audiences``: a subset of
    ``leads``, ``users``, ``visitors``. The object kinds read ``object_type_id`` (``attribute``:
    the one compared with the input, for ``object_by_attribute``)."""

    __tablename__ = "lookups"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.LOOKUP)
    )
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32))
    object_type_id: Mapped[str | None] = mapped_column(
        ForeignKey("custom_object_types.id", ondelete="SET NULL")
    )
    attribute: Mapped[str | None] = mapped_column(String(64))
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    summary_field: Mapped[str | None] = mapped_column(String(64))
    user_scoped: Mapped[bool] = mapped_column(Boolean, default=True)
    direct_fin_usage: Mapped[bool] = mapped_column(Boolean, default=True)
    audiences: Mapped[list[str]] = mapped_column(JSONType, default=list)
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer, default=600)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LookupToken(Base):
    """A bearer token for one lookup's endpoint; only its SHA-256 is kept (and the last four
    characters, to tell tokens apart)."""

    __tablename__ = "lookup_tokens"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.LOOKUP_TOKEN)
    )
    lookup_id: Mapped[str] = mapped_column(ForeignKey("lookups.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LookupCall(Base):
    """One call of a lookup's endpoint, answered or refused. ``counted``: it counts against the
    rate limit (it was authenticated and not itself refused for the limit). ``lookup_id`` is
    no foreign key: the record outlives nothing it needs, and is deleted with its lookup."""

    __tablename__ = "lookup_calls"
    __table_args__ = (
        # The lookup's recent calls, newest first (admin pages).
        Index("ix_lookup_calls_lookup_at", "lookup_id", "at"),
        # The rate limit: this lookup's counted calls of the last minute.
        Index("ix_lookup_calls_rate", "lookup_id", "counted", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    lookup_id: Mapped[str] = mapped_column(String(40))
    token_id: Mapped[str | None] = mapped_column(String(40))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
