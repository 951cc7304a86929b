from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow

SESSION_PREFIX = "chs"


class ChatSession(Base):
    """A visitor's widget session: its bearer token (only the SHA-256 is kept) and the end user
    it speaks for. It expires after 30 days without use."""

    __tablename__ = "chat_sessions"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(SESSION_PREFIX)
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id", ondelete="CASCADE"), index=True)
    anonymous: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChatConversation(Base):
    """What the chat keeps of one of its conversations beyond the conversation itself: which
    Intercom channel Fin answers it through (fixed when it starts), Fin's state there, and
    Intercom's own id of it."""

    __tablename__ = "chat_conversations"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    # fin_agent_api | custom_channel | None (the team answers it all)
    fin_channel: Mapped[str | None] = mapped_column(String(16))
    # thinking | replying | awaiting_user_reply | escalated | resolved | complete
    fin_state: Mapped[str | None] = mapped_column(String(32))
    intercom_conversation_id: Mapped[str | None] = mapped_column(String(255))
    # Fin asked for a rating (csat_requested, resolution feedback_requested).
    csat_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An attribute Fin asked for (Custom Channel attribute_request): the visitor's next message
    # answers it.
    pending_attribute: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMessageExtra(Base):
    """What a Fin message offers beyond its body: quick-reply buttons."""

    __tablename__ = "chat_message_extras"

    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    quick_replies: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)


class ChatUpload(Base):
    """A file a visitor uploaded and has not sent yet. The file is on disk under its key (as
    ``attachments.StoredFile``); sending it makes the stored file of the conversation."""

    __tablename__ = "chat_uploads"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatInboundEvent(Base):
    """An event Intercom delivered (by its id), so that a repeat is ignored."""

    __tablename__ = "chat_inbound_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
