"""All conversation and message SQL."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationTag,
    Message,
)
from findesk.users.models import EndUser

AnySelect = TypeVar("AnySelect", bound=Select[Any])


def get(session: Session, conversation_id: str) -> Conversation | None:
    return session.get(Conversation, conversation_id)


def conversation_exists(session: Session, conversation_id: str) -> bool:
    return (
        session.scalar(select(Conversation.id).where(Conversation.id == conversation_id))
        is not None
    )


def get_for_update(session: Session, conversation_id: str) -> Conversation | None:
    """Lock the row on PostgreSQL so concurrent updates of one conversation serialise; the row
    is read afresh even if this session holds it already, so decisions see the locked state."""
    return session.get(
        Conversation,
        conversation_id,
        with_for_update={"of": Conversation},
        populate_existing=True,
    )


def get_by_object_id(session: Session, object_id: str) -> Conversation | None:
    return session.scalars(select(Conversation).where(Conversation.object_id == object_id)).first()


def open_ids_of_user(session: Session, user_id: str) -> Sequence[str]:
    return session.scalars(
        select(Conversation.id).where(
            Conversation.user_id == user_id, Conversation.status == "open"
        )
    ).all()


def replace_tags(session: Session, conversation: Conversation, tags: list[str]) -> None:
    session.execute(
        delete(ConversationTag).where(ConversationTag.conversation_id == conversation.id)
    )
    session.expire(conversation, ["tag_rows"])
    for position, tag in enumerate(tags):
        session.add(ConversationTag(conversation_id=conversation.id, tag=tag, position=position))
    session.flush()
    session.refresh(conversation, ["tag_rows"])


def get_message(session: Session, message_id: str) -> Message | None:
    return session.scalars(select(Message).where(Message.id == message_id)).first()


def get_message_by_object_id(session: Session, object_id: str) -> Message | None:
    return session.scalars(select(Message).where(Message.object_id == object_id)).first()


def first_message(session: Session, conversation_id: str) -> Message | None:
    return session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.seq)
        .limit(1)
    ).first()


def messages(
    session: Session,
    conversation_id: str,
    *,
    after_id: str | None = None,
    public_only: bool = False,
    limit: int | None = None,
) -> Sequence[Message]:
    """Messages in creation order; with a known ``after_id``, only the later ones."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if after_id is not None:
        after_seq = session.scalar(
            select(Message.seq).where(
                Message.id == after_id, Message.conversation_id == conversation_id
            )
        )
        if after_seq is not None:
            query = query.where(Message.seq > after_seq)
    if public_only:
        query = query.where(Message.visibility == "public")
    query = query.order_by(Message.seq)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).unique().all()


@dataclass(frozen=True)
class ConversationFilter:
    """What a queue shows. ``owner``: waiting (nobody), fin (a bot), mine, or any."""

    owner: str = "any"
    agent_id: str | None = None
    statuses: tuple[str, ...] = ()
    tag: str | None = None
    user_id: str | None = None
    text: str | None = None  # searched in titles, users' names and emails, and message text


def _contains(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, its wildcards searched as themselves."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _filtered(query: AnySelect, f: ConversationFilter) -> AnySelect:
    if f.statuses:
        query = query.where(Conversation.status.in_(f.statuses))
    if f.owner == "waiting":
        query = query.where(Conversation.assignee_id.is_(None))
    elif f.owner == "fin":
        query = query.where(
            Conversation.assignee_id.in_(select(Agent.id).where(Agent.is_bot.is_(True)))
        )
    elif f.owner == "mine":
        query = query.where(Conversation.assignee_id == f.agent_id)
    if f.tag:
        query = query.where(
            exists().where(
                ConversationTag.conversation_id == Conversation.id, ConversationTag.tag == f.tag
            )
        )
    if f.user_id:
        query = query.where(Conversation.user_id == f.user_id)
    if f.text:
        pattern = _contains(f.text)
        # Bodies are sanitised HTML: the & < > that the agent reads are entities there.
        body_pattern = _contains(html.escape(f.text, quote=False))
        query = query.where(
            or_(
                Conversation.title.ilike(pattern, escape="\\"),
                Conversation.user_id.in_(
                    select(EndUser.id).where(
                        or_(
                            EndUser.name.ilike(pattern, escape="\\"),
                            EndUser.email.ilike(pattern, escape="\\"),
                        )
                    )
                ),
                exists().where(
                    Message.conversation_id == Conversation.id,
                    Message.body.ilike(body_pattern, escape="\\"),
                ),
            )
        )
    return query


def list_page(
    session: Session,
    f: ConversationFilter,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> Sequence[Conversation]:
    """Newest activity first; keyset pagination on (last_activity_at, id)."""
    query = _filtered(select(Conversation), f)
    if before is not None:
        at, conversation_id = before
        query = query.where(
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < conversation_id),
            )
        )
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(
        limit
    )
    return session.scalars(query).unique().all()


def count(session: Session, f: ConversationFilter) -> int:
    query = _filtered(select(func.count()).select_from(Conversation), f)
    return int(session.scalar(query) or 0)


def history(
    session: Session, conversation_id: str, *, after_id: int = 0, limit: int | None = None
) -> Sequence[ConversationEvent]:
    query = (
        select(ConversationEvent)
        .where(
            ConversationEvent.conversation_id == conversation_id, ConversationEvent.id > after_id
        )
        .order_by(ConversationEvent.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).unique().all()
