"""All of the chat's SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from findesk.chat.models import (
    ChatConversation,
    ChatInboundEvent,
    ChatMessageExtra,
    ChatSession,
    ChatUpload,
)
from findesk.conversations.models import Conversation, Message
from findesk.live.models import Activity

CHAT = "chat"


def session_by_token_hash(session: Session, token_hash: str) -> ChatSession | None:
    return session.scalars(select(ChatSession).where(ChatSession.token_hash == token_hash)).first()


def chat_conversation(session: Session, conversation_id: str) -> ChatConversation | None:
    return session.get(ChatConversation, conversation_id)


def chat_conversation_for_update(session: Session, conversation_id: str) -> ChatConversation | None:
    return session.scalars(
        select(ChatConversation)
        .where(ChatConversation.conversation_id == conversation_id)
        .with_for_update()
    ).first()


def chat_conversations(
    session: Session, conversation_ids: Collection[str]
) -> dict[str, ChatConversation]:
    if not conversation_ids:
        return {}
    rows = session.scalars(
        select(ChatConversation).where(ChatConversation.conversation_id.in_(conversation_ids))
    )
    return {row.conversation_id: row for row in rows}


def visitor_conversation(
    session: Session, user_id: str, conversation_id: str
) -> Conversation | None:
    """The visitor's own chat conversation, or None (anyone else's, or not a chat)."""
    return session.scalars(
        select(Conversation).where(
            Conversation.id == conversation_id,
            Conversation.user_id == user_id,
            Conversation.channel == CHAT,
        )
    ).first()


def visitor_conversations(session: Session, user_id: str, limit: int) -> Sequence[Conversation]:
    return session.scalars(
        select(Conversation)
        .where(Conversation.user_id == user_id, Conversation.channel == CHAT)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(limit)
    ).all()


def visitor_conversation_ids(session: Session, user_id: str) -> set[str]:
    return set(
        session.scalars(
            select(Conversation.id).where(
                Conversation.user_id == user_id, Conversation.channel == CHAT
            )
        )
    )


def public_messages(
    session: Session, conversation_id: str, *, after_seq: int = 0, limit: int = 1000
) -> Sequence[Message]:
    return (
        session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.visibility == "public",
                Message.seq > after_seq,
            )
            .order_by(Message.seq)
            .limit(limit)
        )
        .unique()
        .all()
    )


def message_seq(session: Session, conversation_id: str, message_id: str) -> int | None:
    return session.scalar(
        select(Message.seq).where(
            Message.id == message_id, Message.conversation_id == conversation_id
        )
    )


def last_seq(session: Session, conversation_id: str) -> int:
    found = session.scalar(
        select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
    )
    return int(found or 0)


def last_seq_before(session: Session, conversation_id: str, at: datetime) -> int:
    found = session.scalar(
        select(func.max(Message.seq)).where(
            Message.conversation_id == conversation_id, Message.created_at <= at
        )
    )
    return int(found or 0)


def latest_public_messages(
    session: Session, conversation_ids: Collection[str]
) -> dict[str, Message]:
    if not conversation_ids:
        return {}
    newest = (
        select(func.max(Message.seq))
        .where(Message.conversation_id.in_(conversation_ids), Message.visibility == "public")
        .group_by(Message.conversation_id)
    )
    rows = session.scalars(select(Message).where(Message.seq.in_(newest))).unique()
    return {row.conversation_id: row for row in rows}


def unread_counts(session: Session, conversations: Sequence[Conversation]) -> dict[str, int]:
    """Public messages by agents (Fin or a person) since the visitor last read each one."""
    counts: dict[str, int] = {}
    for conversation in conversations:
        query = select(func.count()).where(
            Message.conversation_id == conversation.id,
            Message.visibility == "public",
            Message.author_type == "agent",
        )
        if conversation.last_user_read_at is not None:
            query = query.where(Message.created_at > conversation.last_user_read_at)
        counts[conversation.id] = int(session.scalar(query) or 0)
    return counts


def message_extras(session: Session, message_ids: Collection[str]) -> dict[str, ChatMessageExtra]:
    if not message_ids:
        return {}
    rows = session.scalars(
        select(ChatMessageExtra).where(ChatMessageExtra.message_id.in_(message_ids))
    )
    return {row.message_id: row for row in rows}


def uploads(session: Session, session_id: str, keys: Collection[str]) -> Sequence[ChatUpload]:
    if not keys:
        return []
    return session.scalars(
        select(ChatUpload).where(ChatUpload.session_id == session_id, ChatUpload.key.in_(keys))
    ).all()


def first_time(session: Session, key: str, now: datetime) -> bool:
    """Note an inbound event by its key; False when it was noted before (a repeat). One
    statement: of two deliveries at once, one wins."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(ChatInboundEvent)
        .values(key=key, received_at=now)
        .on_conflict_do_nothing(index_elements=[ChatInboundEvent.key])
        .returning(ChatInboundEvent.key)
    )
    return session.execute(statement).first() is not None


def activity_at(session: Session, activity_id: int) -> datetime | None:
    return session.scalar(select(Activity.at).where(Activity.id == activity_id))


def expired_uploads(session: Session, before: datetime, limit: int = 500) -> Sequence[ChatUpload]:
    return session.scalars(
        select(ChatUpload).where(ChatUpload.created_at < before).limit(limit)
    ).all()


def purge_sessions(session: Session, expired_before: datetime) -> int:
    result = session.execute(delete(ChatSession).where(ChatSession.expires_at < expired_before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge_inbound_events(session: Session, before: datetime) -> int:
    result = session.execute(delete(ChatInboundEvent).where(ChatInboundEvent.received_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
