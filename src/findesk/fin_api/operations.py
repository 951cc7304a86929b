"""The nine operations of the contract, shared by both variants. Each runs in the call's one
session (``security.authorized_session``), a transaction for those that write, or for the two
reads Fin makes on every sync, on a Core connection (``security.authorized_reader``)."""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from findesk.agents import service as agents
from findesk.conversations import service as conversations
from findesk.conversations.service import Author, NewMessage
from findesk.fin_api import schemas as s
from findesk.fin_api.wire import (
    EncodedMessages,
    agent_out,
    conversation_json,
    conversation_out,
    encode_messages,
    message_out,
    user_out,
)
from findesk.kit.actor import FIN
from findesk.users import service as users


def get_user(session: Session, req: s.GetUserIn) -> s.EndUserOut:
    return user_out(users.get_user(session, req.user_id))


def create_user(session: Session, req: s.CreateUserIn) -> tuple[s.EndUserOut, bool]:
    user, created = users.create_user(
        session,
        object_id=req.object_id,
        name=req.name,
        email=req.email,
        photo_url=req.photo_url,
        attributes=req.attributes,
    )
    return user_out(user), created


def update_user(session: Session, req: s.UpdateUserIn) -> s.EndUserOut:
    changes = req.model_dump(include=req.model_fields_set - {"user_id"})
    return user_out(users.update_user(session, req.user_id, changes, FIN))


def get_agents(session: Session) -> list[s.AgentOut]:
    return [agent_out(agent) for agent in agents.list_agents(session)]


def get_conversation(connection: Connection, req: s.GetConversationIn) -> bytes:
    """The conversation's JSON, read as plain columns: Fin reads it on every sync."""
    found = conversations.conversation_for_wire(connection, req.conversation_id)
    return conversation_json(*found)


def create_conversation(
    session: Session, req: s.CreateConversationIn
) -> tuple[s.CreatedConversationOut, bool]:
    first = req.initial_message
    fin = agents.fin_agent(session)
    conversation, message, created = conversations.open_conversation(
        session,
        user_id=req.user_id,
        object_id=req.object_id,
        title=req.title,
        attributes=first.attributes,
        assignee_id=fin.id if fin else None,
        first=_new_message(first),
        actor=FIN,
    )
    out = s.CreatedConversationOut(
        conversation=conversation_out(conversation), initial_message=message_out(message)
    )
    return out, created


# findesk's own chat is not Fin's to change through this API (``findesk.chat``): its
# conversations are not found here.
NOT_FINS = frozenset({"chat"})


def update_conversation(session: Session, req: s.UpdateConversationIn) -> s.ConversationOut:
    changes = req.model_dump(include=req.model_fields_set - {"conversation_id"})
    conversation = conversations.update_conversation(
        session, req.conversation_id, changes, FIN, hidden_channels=NOT_FINS
    )
    return conversation_out(conversation)


def get_messages(connection: Connection, req: s.GetMessagesIn) -> EncodedMessages:
    """Every message after ``after_id``, encoded as ``MessageOut`` JSON: Fin has no paging, so a
    conversation of 10,000 messages is sent whole, and each message is encoded once."""
    found = conversations.messages_for_wire(connection, req.conversation_id, after_id=req.after_id)
    return encode_messages(found)


def create_message(session: Session, req: s.CreateMessageIn) -> tuple[s.MessageOut, bool]:
    message, created = conversations.add_message(
        session, req.conversation_id, _new_message(req), FIN, hidden_channels=NOT_FINS
    )
    return message_out(message), created


def _new_message(req: s.CreateMessageIn | s.InitialMessageIn) -> NewMessage:
    return NewMessage(
        author=Author(user_type=req.author.user_type, id=req.author.id),
        body=req.body,
        visibility=req.visibility,
        attachments=[a.model_dump() for a in req.attachments],
        object_id=req.object_id,
        created_at=req.created_at,
    )
