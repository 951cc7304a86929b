from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class SavedReply(Base):
    """A canned answer. ``body`` is sanitised HTML that may hold placeholders
    (``placeholders``), filled in for a conversation when the reply is inserted. ``owner_id``
    None: shared with the team; else personal, seen and used by its owner only."""

    __tablename__ = "saved_replies"
    __table_args__ = (Index("ix_saved_replies_owner_title", "owner_id", "title"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.SAVED_REPLY)
    )
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    # A published article whose public page (the one Fin cites) is linked under the body.
    article_id: Mapped[str | None] = mapped_column(ForeignKey("articles.id", ondelete="SET NULL"))
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Macro(Base):
    """A named, ordered list of actions applied to a conversation in one transaction.
    ``actions`` holds dicts as ``schemas.MacroAction`` describes them. Shared or personal, as
    saved replies are."""

    __tablename__ = "macros"
    __table_args__ = (Index("ix_macros_owner_name", "owner_id", "name"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.MACRO)
    )
    name: Mapped[str] = mapped_column(String(255))
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
