"""Rows to the agent API's shapes: the Fin wire format, with agents' role and bot flag and the
conversation's owner and activity."""

from __future__ import annotations

from findesk.agent_api.schemas import AgentView, ConversationView, MessageView
from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, Message
from findesk.conversations.service import owner_kind
from findesk.fin_api.wire import agent_out, conversation_fields, message_fields


def agent_view(agent: Agent) -> AgentView:
    return AgentView(**agent_out(agent).model_dump(), is_bot=agent.is_bot, role=agent.role)


def conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(
        **conversation_fields(conversation, agent_view),
        owner=owner_kind(conversation),
        last_user_read_at=conversation.last_user_read_at,
        last_activity_at=conversation.last_activity_at,
    )


def message_view(message: Message) -> MessageView:
    return MessageView(**message_fields(message, agent_view))
