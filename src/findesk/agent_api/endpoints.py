"""``/api/v1``: what human agents do. Thin: authenticate, call the domain, shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from findesk.agent_api import schemas as s
from findesk.agent_api.security import agent_api_router, current_agent
from findesk.agent_api.views import (
    agent_view,
    conversation_list_item,
    conversation_view,
    history_event_view,
    message_page_view,
    message_view,
    token_view,
)
from findesk.agents import service as agents
from findesk.agents.models import Agent
from findesk.audit.service import AuditActor
from findesk.auth import service as auth
from findesk.chat import service as chat
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.repository import ConversationFilter
from findesk.conversations.service import Author, NewMessage
from findesk.csat import service as csat
from findesk.fin_api.schemas import Status
from findesk.kit.actor import agent as agent_actor
from findesk.kit.errors import Forbidden
from findesk.kit.http import PROBLEM_JSON, client_address, db_of
from findesk.kit.pagination import decode_cursor, encode_cursor
from findesk.search import service as search
from findesk.users import service as users

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
    """A queue, newest activity first: waiting for a human, mine, Fin is handling (these
    three without the snoozed), snoozed, or all; each item says whether it is `unread` for
    you. `user_id` may be an id the end user had before it was merged into another."""
    me = current_agent(request)
    before = decode_cursor(cursor) if cursor else None
    with db_of(request).read_session() as session:
        f = ConversationFilter.queue(
            queue,
            me.id,
            statuses=tuple(status or ()),
            tag=tag,
            # An end user merged into another: the id a script holds names the survivor.
            user_id=users.current_id(session, user_id) if user_id else None,
        )
        rows = conversations.list_conversations(session, f, limit=limit + 1, before=before)
        page = rows[:limit]
        unread = conversations.unread_among(session, me.id, [c.id for c in page])
        items = [conversation_list_item(c, unread=c.id in unread) for c in page]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.last_activity_at, last.id)
    return s.ConversationPage(items=items, next_cursor=next_cursor)


@router.get("/search", response_model=s.SearchPage)
def search_conversations(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=search.MAX_QUERY)],
    queue: s.Queue = "all",
    status: Annotated[list[Status] | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> s.SearchPage:
    """Conversations in which one message holds every word of `q`, or the title, the end
    user's name and email together do; the last word also as a prefix. Newest activity
    first, across every queue and status unless filtered, each with a highlighted snippet."""
    f = ConversationFilter.queue(
        queue, current_agent(request).id, statuses=tuple(status or ()), tag=tag
    )
    before = decode_cursor(cursor) if cursor else None
    with db_of(request).read_session() as session:
        page = search.search(session, q, f, limit=limit, before=before)
        items = [
            s.SearchHit(
                conversation=conversation_view(hit.conversation),
                snippet=str(hit.snippet),
                message_id=hit.message.id if hit.message is not None else None,
            )
            for hit in page.hits
        ]
    next_cursor = None
    if page.has_more:
        last = page.hits[-1].conversation
        next_cursor = encode_cursor(last.last_activity_at, last.id)
    return s.SearchPage(items=items, next_cursor=next_cursor)


@router.get("/queues", response_model=s.QueueCounts)
def queue_counts(request: Request) -> s.QueueCounts:
    """Open conversations in each queue."""
    with db_of(request).read_session() as session:
        return s.QueueCounts(**conversations.queue_counts(session, current_agent(request).id))


PageSize = Annotated[int, Query(ge=1, le=s.MAX_MESSAGE_PAGE_SIZE)]
# The largest id a history event can have (64 bits, on SQLite and PostgreSQL): a larger one
# cannot even be compared in SQL.
MAX_ROW_ID = 2**63 - 1
MessageId = Annotated[str | None, Query(max_length=255)]


@router.get("/conversations/{conversation_id}", response_model=s.ConversationDetail)
def get_conversation(
    request: Request, conversation_id: str, limit: PageSize = s.MESSAGE_PAGE_SIZE
) -> s.ConversationDetail:
    """The conversation and its newest messages; older ones from `/messages?before=`. It is
    then read for you up to the newest of them: no longer `unread` in the queues."""
    me = current_agent(request)
    db = db_of(request)
    with db.read_session() as session:
        conversation = conversations.get_conversation(session, conversation_id)
        found = conversations.message_page(session, conversation_id, limit=limit)
        page = message_page_view(found)
        rating = csat.rating_of(session, conversation_id)
        detail = s.ConversationDetail(
            conversation=conversation_view(conversation),
            messages=page.items,
            has_more_before=page.has_more_before,
            before_cursor=page.before_cursor,
            csat=s.CsatView.model_validate(rating, from_attributes=True) if rating else None,
        )
        read_up_to = conversations.read_up_to(session, me.id, conversation_id)
    newest_shown = max((m.seq for m in found.messages), default=0)
    if newest_shown > read_up_to:  # a write only when there is something new
        with db.transaction() as session:
            conversations.mark_read(session, me.id, conversation_id, newest_shown)
    return detail


@router.get("/conversations/{conversation_id}/history", response_model=s.HistoryPage)
def get_history(
    request: Request,
    conversation_id: str,
    after_id: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> s.HistoryPage:
    """Every change of the conversation, oldest first: who changed what, from what, when."""
    with db_of(request).read_session() as session:
        conversations.get_conversation(session, conversation_id)
        rows = history.events(session, conversation_id, after_id=after_id, limit=limit + 1)
        items = [history_event_view(event) for event in rows[:limit]]
    return s.HistoryPage(items=items, next_after_id=items[-1].id if len(rows) > limit else None)


@router.get("/conversations/{conversation_id}/messages", response_model=s.MessagePage)
def get_messages(
    request: Request,
    conversation_id: str,
    limit: PageSize = s.MESSAGE_PAGE_SIZE,
    before: MessageId = None,
    after_id: MessageId = None,
) -> s.MessagePage:
    """A page of messages, in creation order: the newest; with `before` (a message id), the
    ones just older than it; with `after_id`, the ones just after it (from the first message
    when the id is not one of the conversation's). Follow `before_cursor` and `after_cursor`."""
    with db_of(request).read_session() as session:
        page = conversations.message_page(
            session, conversation_id, limit=limit, before=before, after=after_id
        )
        return message_page_view(page)


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
        conversation = conversations.get_conversation(session, conversation_id)
    if conversation.channel == "chat":
        # findesk's own chat: the visitor's widget shows it (``findesk.chat``), not Fin.
        with db_of(request).transaction() as session:
            chat.agent_typing(session, conversation_id, agent_actor(me.id))
        return s.TypingOut(accepted=True)
    request.app.state.typing.signal(conversation_id, me)
    return s.TypingOut(accepted=True)


# --- administration (admins only) ---------------------------------------------------------------


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
    }


ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    403: _problem("The calling agent is not an administrator.")
}


def current_admin(request: Request) -> Agent:
    me = current_agent(request)
    if me.role != "admin":
        raise Forbidden("Only administrators may do this.")
    return me


def _audit_actor(request: Request, admin: Agent) -> AuditActor:
    return AuditActor.for_agent(admin, client_address(request))


@router.post(
    "/agents/{agent_id}/deactivate",
    response_model=s.AgentDeactivated,
    responses={**ADMIN_ONLY, 409: _problem("The agent is the last active administrator.")},
)
def deactivate_agent(request: Request, agent_id: str) -> s.AgentDeactivated:
    """Sign the agent out everywhere, revoke its personal tokens and send its open
    conversations back to the waiting queue; its messages and history stay. Not the bot that
    represents Fin, nor the last active administrator."""
    admin = current_admin(request)
    with db_of(request).transaction() as session:
        done = agents.deactivate_agent(session, agent_id, by=_audit_actor(request, admin))
        return s.AgentDeactivated(
            agent=agent_view(done.agent),
            tokens_revoked=done.tokens_revoked,
            unassigned_conversation_ids=done.unassigned_conversation_ids,
        )


@router.post("/agents/{agent_id}/reactivate", response_model=s.AgentView, responses=ADMIN_ONLY)
def reactivate_agent(request: Request, agent_id: str) -> s.AgentView:
    """The agent may sign in again (its old tokens stay revoked)."""
    admin = current_admin(request)
    with db_of(request).transaction() as session:
        agent = agents.reactivate_agent(session, agent_id, by=_audit_actor(request, admin))
        return agent_view(agent)


@router.get(
    "/agents/{agent_id}/tokens", response_model=list[s.AgentTokenView], responses=ADMIN_ONLY
)
def list_agent_tokens(request: Request, agent_id: str) -> list[s.AgentTokenView]:
    """The agent's personal tokens, revoked ones too, newest first; never their secrets."""
    current_admin(request)
    with db_of(request).read_session() as session:
        agents.get_agent(session, agent_id)
        return [token_view(t) for t in auth.list_agent_tokens(session, agent_id)]


@router.delete(
    "/agents/{agent_id}/tokens/{token_id}", response_model=s.AgentTokenView, responses=ADMIN_ONLY
)
def revoke_agent_token(request: Request, agent_id: str, token_id: str) -> s.AgentTokenView:
    """Revoke one personal token at once (again: no change)."""
    admin = current_admin(request)
    with db_of(request).transaction() as session:
        agents.get_agent(session, agent_id)
        token = auth.revoke_agent_token(
            session, token_id, agent_id=agent_id, by=_audit_actor(request, admin)
        )
        return token_view(token)
