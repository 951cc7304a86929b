"""``/api/v1``: what human agents do. Thin: authenticate, call the domain, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from findesk.agent_api import schemas as s
from findesk.agent_api.security import agent_api_router, current_agent
from findesk.agent_api.views import (
    agent_view,
    conversation_view,
    history_event_view,
    message_view,
)
from findesk.agents import service as agents
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.repository import ConversationFilter
from findesk.conversations.service import Author, NewMessage
from findesk.fin_api.schemas import Status
from findesk.kit.actor import agent as agent_actor
from findesk.kit.http import db_of
from findesk.kit.pagination import decode_cursor, encode_cursor

router = agent_api_router(tag="Agent API", not_found="No such conversation or agent.")


@router.get("/me", response_model=s.AgentView)
def me(request: Request) -> s.AgentView:
    return agent_view(current_agent(request))


@router.get("/agents", response_model=list[s.AgentView])
def list_agents(request: Request) -> list[s.AgentView]:
    with db_of(request).read_session() as session:
        return [agent_view(a) for a in agents.list_agents(session)]


@router.get("/conversations", response_model=s.ConversationPage)
def list_conversations(
    request: Request,
    queue: s.Queue = "all",
    status: Annotated[list[Status] | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=255)] = None,
    user_id: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> s.ConversationPage:
    """A queue, newest activity first: waiting for a human, mine, Fin is handling, or all."""
    f = ConversationFilter(
        owner="any" if queue == "all" else queue,
        agent_id=current_agent(request).id,
        statuses=tuple(status or ()),
        tag=tag,
        user_id=user_id,
    )
    before = decode_cursor(cursor) if cursor else None
    with db_of(request).read_session() as session:
        rows = conversations.list_conversations(session, f, limit=limit + 1, before=before)
        items = [conversation_view(c) for c in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.last_activity_at, last.id)
    return s.ConversationPage(items=items, next_cursor=next_cursor)


@router.get("/queues", response_model=s.QueueCounts)
def queue_counts(request: Request) -> s.QueueCounts:
    """Open conversations in each queue."""
    with db_of(request).read_session() as session:
        return s.QueueCounts(**conversations.queue_counts(session, current_agent(request).id))


@router.get("/conversations/{conversation_id}", response_model=s.ConversationDetail)
def get_conversation(request: Request, conversation_id: str) -> s.ConversationDetail:
    with db_of(request).read_session() as session:
        conversation = conversations.get_conversation(session, conversation_id)
        messages = conversations.list_messages(session, conversation_id)
        return s.ConversationDetail(
            conversation=conversation_view(conversation),
            messages=[message_view(m) for m in messages],
        )


@router.get("/conversations/{conversation_id}/history", response_model=s.HistoryPage)
def get_history(
    request: Request,
    conversation_id: str,
    after_id: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> s.HistoryPage:
    """Every change of the conversation, oldest first: who changed what, from what, when."""
    with db_of(request).read_session() as session:
        conversations.get_conversation(session, conversation_id)
        rows = history.events(session, conversation_id, after_id=after_id, limit=limit + 1)
        items = [history_event_view(event) for event in rows[:limit]]
    return s.HistoryPage(items=items, next_after_id=items[-1].id if len(rows) > limit else None)


@router.get("/conversations/{conversation_id}/messages", response_model=list[s.MessageView])
def get_messages(
    request: Request, conversation_id: str, after_id: str | None = None
) -> list[s.MessageView]:
    with db_of(request).read_session() as session:
        rows = conversations.list_messages(session, conversation_id, after_id=after_id)
        return [message_view(m) for m in rows]


@router.post(
    "/conversations/{conversation_id}/messages", response_model=s.MessageView, status_code=201
)
def reply(request: Request, conversation_id: str, body: s.ReplyIn) -> s.MessageView:
    """A public reply (which takes the conversation over from Fin) or a private note."""
    me = current_agent(request)
    new = NewMessage(author=Author("agent", me.id), body=body.body, visibility=body.visibility)
    with db_of(request).transaction() as session:
        message, _ = conversations.add_message(session, conversation_id, new, agent_actor(me.id))
        return message_view(message)


@router.patch("/conversations/{conversation_id}", response_model=s.ConversationView)
def update_conversation(
    request: Request, conversation_id: str, body: s.ConversationPatch
) -> s.ConversationView:
    me = current_agent(request)
    changes = body.model_dump(include=body.model_fields_set)
    with db_of(request).transaction() as session:
        conversation = conversations.update_conversation(
            session, conversation_id, changes, agent_actor(me.id)
        )
        return conversation_view(conversation)


@router.post("/conversations/{conversation_id}/take-over", response_model=s.ConversationView)
def take_over(request: Request, conversation_id: str) -> s.ConversationView:
    """Make the calling agent the owner (from Fin, from nobody or from another agent)."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        conversation = conversations.take_over(session, conversation_id, me.id, agent_actor(me.id))
        return conversation_view(conversation)


@router.post("/conversations/{conversation_id}/hand-back", response_model=s.ConversationView)
def hand_back(request: Request, conversation_id: str) -> s.ConversationView:
    """Give the conversation back to Fin."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        conversation = conversations.hand_back_to_fin(session, conversation_id, agent_actor(me.id))
        return conversation_view(conversation)


@router.post("/conversations/{conversation_id}/typing", response_model=s.TypingOut, status_code=202)
def typing(request: Request, conversation_id: str) -> s.TypingOut:
    """The agent is typing: Fin shows an indicator in the Messenger (sent by the notifier)."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        conversations.get_conversation(session, conversation_id)
    request.app.state.typing.signal(conversation_id, me)
    return s.TypingOut(accepted=True)
