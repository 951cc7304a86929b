"""Rows to the agent API's shapes."""

from __future__ import annotations

from findesk.agent_api.schemas import AgentView, ConversationView, MessageView
from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, Message
from findesk.conversations.service import owner_kind
from findesk.fin_api.schemas import EndUserOut
from findesk.fin_api.wire import attachments_out, user_out


def agent_view(agent: Agent) -> AgentView:
    return AgentView(
        id=agent.id,
        name=agent.name,
        email=agent.email,
        photo_url=agent.photo_url,
        alias=agent.alias,
        is_bot=agent.is_bot,
        role=agent.role,
    )


def conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(
        id=conversation.id,
        status=conversation.status,
        user=user_out(conversation.user),
        title=conversation.title,
        tags=conversation.tags,
        attributes=conversation.attributes or {},
        assignee=agent_view(conversation.assignee) if conversation.assignee else None,
        owner=owner_kind(conversation),
        last_user_read_at=conversation.last_user_read_at,
        last_activity_at=conversation.last_activity_at,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


def message_view(message: Message) -> MessageView:
    author: EndUserOut | AgentView
    if message.author_agent is not None:
        author = agent_view(message.author_agent)
    else:
        assert message.author_user is not None
        author = user_out(message.author_user)
    return MessageView(
        id=message.id,
        conversation_id=message.conversation_id,
        body=message.body,
        author=author,
        visibility=message.visibility,
        created_at=message.created_at,
        attachments=attachments_out(message),
    )
