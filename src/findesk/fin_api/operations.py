"""The nine operations of the contract, shared by both variants. Each runs in one transaction."""

from __future__ import annotations

from findesk.agents import service as agents
from findesk.conversations import service as conversations
from findesk.conversations.service import Author, NewMessage
from findesk.fin_api import schemas as s
from findesk.fin_api.wire import (
    EncodedMessages,
    agent_out,
    conversation_out,
    encode_messages,
    message_out,
    user_out,
)
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.users import service as users


def get_user(db: Database, req: s.GetUserIn) -> s.EndUserOut:
    with db.read_session() as session:
        return user_out(users.get_user(session, req.user_id))


def create_user(db: Database, req: s.CreateUserIn) -> tuple[s.EndUserOut, bool]:
    with db.transaction() as session:
        user, created = users.create_user(
            session,
            object_id=req.object_id,
            name=req.name,
            email=req.email,
            photo_url=req.photo_url,
            attributes=req.attributes,
        )
        return user_out(user), created


def update_user(db: Database, req: s.UpdateUserIn) -> s.EndUserOut:
    with db.transaction() as session:
        changes = req.model_dump(include=req.model_fields_set - {"user_id"})
        return user_out(users.update_user(session, req.user_id, changes, FIN))


def get_agents(db: Database) -> list[s.AgentOut]:
    with db.read_session() as session:
        return [agent_out(agent) for agent in agents.list_agents(session)]


def get_conversation(db: Database, req: s.GetConversationIn) -> s.ConversationOut:
    with db.read_session() as session:
        return conversation_out(conversations.get_conversation(session, req.conversation_id))


def create_conversation(
    db: Database, req: s.CreateConversationIn
) -> tuple[s.CreatedConversationOut, bool]:
    first = req.initial_message
    with db.transaction() as session:
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


def update_conversation(db: Database, req: s.UpdateConversationIn) -> s.ConversationOut:
    with db.transaction() as session:
        changes = req.model_dump(include=req.model_fields_set - {"conversation_id"})
        conversation = conversations.update_conversation(session, req.conversation_id, changes, FIN)
        return conversation_out(conversation)


def get_messages(db: Database, req: s.GetMessagesIn) -> EncodedMessages:
    """Every message after ``after_id``, encoded as ``MessageOut`` JSON: Fin has no paging, so a
    conversation of 10,000 messages is sent whole, and each message is encoded once."""
    with db.read_session() as session:
        found = conversations.messages_for_wire(session, req.conversation_id, after_id=req.after_id)
        return encode_messages(found)


def create_message(db: Database, req: s.CreateMessageIn) -> tuple[s.MessageOut, bool]:
    with db.transaction() as session:
        message, created = conversations.add_message(
            session, req.conversation_id, _new_message(req), FIN
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
