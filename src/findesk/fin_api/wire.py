"""Rows to the wire format. The agent API reuses these with its richer agent shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, Message
from findesk.fin_api.schemas import (
    AgentOut,
    AttachmentOut,
    ConversationOut,
    EndUserOut,
    MessageOut,
)
from findesk.kit.timeutil import isoformat
from findesk.users.models import EndUser

if TYPE_CHECKING:
    from findesk.conversations.service import WireMessages

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


def user_json(columns: Sequence[Any]) -> dict[str, Any]:
    """An end user as ``EndUserOut`` gives it, from its wire columns (id, name, email,
    photo_url, attributes: see ``conversations.repository``)."""
    user_id, name, email, photo_url, attributes = columns
    return {
        "id": user_id,
        "user_type": "end_user",
        "name": name,
        "email": email,
        "photo_url": photo_url,
        "attributes": attributes or {},
    }


def agent_json(columns: Sequence[Any]) -> dict[str, Any]:
    """An agent as ``AgentOut`` gives it, from its wire columns (id, name, email, photo_url,
    alias)."""
    agent_id, name, email, photo_url, alias = columns
    return {
        "id": agent_id,
        "user_type": "agent",
        "name": name,
        "email": email,
        "photo_url": photo_url,
        "alias": alias,
    }


def conversation_json(row: Sequence[Any], tags: list[str]) -> bytes:
    """A conversation's JSON from its wire columns (``conversations.conversation_for_wire``):
    what ``ConversationOut`` gives, byte for byte (the tests compare the two), built with no
    ORM object or model in between."""
    (conversation_id, status, title, attributes, created_at, updated_at) = row[:6]
    return to_json(
        {
            "id": conversation_id,
            "status": status,
            "user": user_json(row[6:11]),
            "title": title,
            "tags": tags,
            "attributes": attributes or {},
            "assignee": None if row[11] is None else agent_json(row[11:16]),
            "created_at": isoformat(created_at),
            "updated_at": isoformat(updated_at),
        }
    )


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


@dataclass(frozen=True)
class EncodedMessages:
    """get_messages' answer: each message's JSON, and the ids (for the call ledger)."""

    ids: list[str]
    items: list[bytes]

    def array(self) -> bytes:
        return b"[" + b",".join(self.items) + b"]"


def encode_messages(messages: WireMessages) -> EncodedMessages:
    """Each message as the JSON ``MessageOut`` gives, byte for byte (its schema documents it;
    the tests compare the two), encoded as it is read: no model or ORM object a message, each
    author shaped once, and only bytes kept, which the garbage collector never scans (10,000
    dicts kept until the end cost full collections: 60 ms each in a loaded server)."""
    users = {messages.end_user[0]: user_json(messages.end_user)}
    agents: dict[str, dict[str, Any]] = {}
    out = EncodedMessages([], [])
    for chunk in messages.chunks:
        new_users = {row[3] for row in chunk if row[3] is not None and row[3] not in users}
        new_agents = {row[4] for row in chunk if row[4] is not None and row[4] not in agents}
        if new_users or new_agents:
            found_users, found_agents = messages.authors(new_users, new_agents)
            users.update((k, user_json(u)) for k, u in found_users.items())
            agents.update((k, agent_json(a)) for k, a in found_agents.items())
        for (
            message_id,
            conversation_id,
            body,
            user_id,
            agent_id,
            visibility,
            created_at,
            attachments,
        ) in chunk:
            out.ids.append(message_id)
            out.items.append(
                to_json(
                    {
                        "id": message_id,
                        "conversation_id": conversation_id,
                        "message_type": "comment",
                        "body": body,
                        # Foreign keys: every author is there.
                        "author": agents[agent_id] if agent_id is not None else users[str(user_id)],
                        "visibility": visibility,
                        "created_at": isoformat(created_at),
                        "attachments": _attachments(attachments),
                    }
                )
            )
    return out


def _attachments(stored: str | None) -> list[dict[str, Any]]:
    """The attachments column as JSON text (``repository.message_wire_rows``), in the wire shape."""
    if not stored or stored == "[]":
        return []
    return [
        {"url": a["url"], "filetype": a.get("filetype"), "filename": a.get("filename")}
        for a in json.loads(stored) or ()
    ]
