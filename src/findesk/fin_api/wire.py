"""Rows to the wire format. The agent API reuses these with its richer agent shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, Message
from findesk.fin_api.schemas import (
    AgentOut,
    AttachmentOut,
    ConversationOut,
    EndUserOut,
    MessageOut,
)
from findesk.users.models import EndUser

AgentShape = Callable[[Agent], Any]


def user_out(user: EndUser) -> EndUserOut:
    return EndUserOut(
        id=user.id,
        name=user.name,
        email=user.email,
        photo_url=user.photo_url,
        attributes=user.attributes or {},
    )


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        photo_url=agent.photo_url,
        alias=agent.alias,
    )


def conversation_fields(conversation: Conversation, agent: AgentShape) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "status": conversation.status,
        "user": user_out(conversation.user),
        "title": conversation.title,
        "tags": conversation.tags,
        "attributes": conversation.attributes or {},
        "assignee": agent(conversation.assignee) if conversation.assignee else None,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
    }


def message_fields(message: Message, agent: AgentShape) -> dict[str, Any]:
    if message.author_agent is not None:
        author = agent(message.author_agent)
    else:
        assert message.author_user is not None
        author = user_out(message.author_user)
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "body": message.body,
        "author": author,
        "visibility": message.visibility,
        "created_at": message.created_at,
        "attachments": [
            AttachmentOut(url=a["url"], filetype=a.get("filetype"), filename=a.get("filename"))
            for a in message.attachments or []
        ],
    }


def conversation_out(conversation: Conversation) -> ConversationOut:
    return ConversationOut(**conversation_fields(conversation, agent_out))


def message_out(message: Message) -> MessageOut:
    return MessageOut(**message_fields(message, agent_out))
