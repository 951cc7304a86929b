"""Rows to the agent API's shapes: the Fin wire format, with agents' role and bot flag and the
conversation's owner and activity."""

from __future__ import annotations

from typing import Any

from findesk.agent_api.schemas import (
    AgentTokenView,
    AgentView,
    ConversationListItem,
    ConversationView,
    EndUserView,
    HistoryEventView,
    MessagePage,
    MessageView,
)
from findesk.agents.models import Agent
from findesk.auth.models import AgentToken
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, ConversationEvent, Message
from findesk.conversations.service import owner_kind
from findesk.fin_api.wire import agent_out, conversation_fields, message_fields, user_out
from findesk.users.models import EndUser


def agent_view(agent: Agent) -> AgentView:
    return AgentView(
        **agent_out(agent).model_dump(), is_bot=agent.is_bot, role=agent.role, active=agent.active
    )


def token_view(token: AgentToken) -> AgentTokenView:
    return AgentTokenView(
        id=token.id,
        agent_id=token.agent_id,
        label=token.label,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


def end_user_view(user: EndUser) -> EndUserView:
    return EndUserView(**user_out(user).model_dump(), role=user.role)


def _conversation_view_fields(conversation: Conversation) -> dict[str, Any]:
    return {
        **conversation_fields(conversation, agent_view),
        "user": end_user_view(conversation.user),
        "owner": owner_kind(conversation),
        "last_user_read_at": conversation.last_user_read_at,
        "last_activity_at": conversation.last_activity_at,
        "handed_over_at": conversation.handed_over_at,
        "taken_over_at": conversation.taken_over_at,
        "first_human_reply_at": conversation.first_human_reply_at,
        "snoozed_until": conversation.snoozed_until,
    }


def conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(**_conversation_view_fields(conversation))


def conversation_list_item(conversation: Conversation, *, unread: bool) -> ConversationListItem:
    """A queue's item: the conversation, and whether it is unread for the agent asking."""
    return ConversationListItem(**_conversation_view_fields(conversation), unread=unread)


def message_view(message: Message) -> MessageView:
    return MessageView(
        **message_fields(message, agent_view),
        after_take_over=message.after_take_over,
        seen_by_fin_at=message.seen_by_fin_at,
    )


def message_page_view(page: conversations.MessagePage) -> MessagePage:
    items = [message_view(m) for m in page.messages]
    return MessagePage(
        items=items,
        has_more_before=page.has_more_before,
        before_cursor=items[0].id if page.has_more_before else None,
        has_more_after=page.has_more_after,
        after_cursor=items[-1].id if page.has_more_after else None,
    )


def history_event_view(event: ConversationEvent) -> HistoryEventView:
    return HistoryEventView.model_validate(
        {
            "id": event.id,
            "kind": event.kind,
            "at": event.at,
            "actor": event.actor,
            "actor_agent": agent_view(event.actor_agent) if event.actor_agent else None,
            "from_value": event.from_value,
            "to_value": event.to_value,
            "detail": event.detail,
        }
    )
