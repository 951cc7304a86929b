"""``/api/v1/saved-replies`` and ``/api/v1/macros``, and using them in a conversation. Thin:
authenticate, call the domain, shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response
from sqlalchemy.orm import Session

from findesk.agent_api.security import agent_api_router, current_agent
from findesk.agent_api.views import conversation_view, message_view
from findesk.agents.models import Agent
from findesk.kit.http import PROBLEM_JSON, db_of, settings_of
from findesk.knowledge.service import public_url
from findesk.replies import schemas as s
from findesk.replies import service
from findesk.replies.models import Macro, SavedReply

router = agent_api_router(
    tag="Saved replies and macros", not_found="No such saved reply, macro or conversation."
)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
    }


SHARED_ONLY: dict[int | str, dict[str, Any]] = {
    403: _problem("A shared one, and the calling agent is not an administrator.")
}


def reply_view(
    session: Session, request: Request, reply: SavedReply, me: Agent
) -> s.SavedReplyView:
    article = service.article_of(session, reply)
    return s.SavedReplyView(
        id=reply.id,
        title=reply.title,
        body=reply.body,
        shared=reply.owner_id is None,
        owner_id=reply.owner_id,
        article_id=reply.article_id,
        article_title=article.title if article else None,
        article_url=public_url(article, settings_of(request).base_url) if article else None,
        can_edit=service.may_manage(me, reply.owner_id),
        created_at=reply.created_at,
        updated_at=reply.updated_at,
    )


def macro_view(macro: Macro, me: Agent) -> s.MacroView:
    return s.MacroView(
        id=macro.id,
        name=macro.name,
        actions=list(macro.actions),
        shared=macro.owner_id is None,
        owner_id=macro.owner_id,
        can_edit=service.may_manage(me, macro.owner_id),
        created_at=macro.created_at,
        updated_at=macro.updated_at,
    )


# --- saved replies ----------------------------------------------------------------------------


@router.get("/saved-replies", response_model=list[s.SavedReplyView])
def list_saved_replies(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, description="In the title.")] = None,
) -> list[s.SavedReplyView]:
    """The team's shared replies and the caller's personal ones, by title."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        return [
            reply_view(session, request, r, me) for r in service.list_replies(session, me, query=q)
        ]


@router.post(
    "/saved-replies", response_model=s.SavedReplyView, status_code=201, responses=SHARED_ONLY
)
def create_saved_reply(
    request: Request, response: Response, body: s.SavedReplyCreate
) -> s.SavedReplyView:
    """A personal reply, or (administrators) one shared with the team. An unknown placeholder
    is refused (422)."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        reply = service.create_reply(
            session,
            me,
            title=body.title,
            body=body.body,
            shared=body.shared,
            article_id=body.article_id,
        )
        view = reply_view(session, request, reply, me)
    response.headers["Location"] = f"/api/v1/saved-replies/{view.id}"
    return view


@router.get("/saved-replies/{reply_id}", response_model=s.SavedReplyView)
def get_saved_reply(request: Request, reply_id: str) -> s.SavedReplyView:
    me = current_agent(request)
    with db_of(request).read_session() as session:
        return reply_view(session, request, service.get_reply(session, reply_id, me), me)


@router.patch("/saved-replies/{reply_id}", response_model=s.SavedReplyView, responses=SHARED_ONLY)
def update_saved_reply(
    request: Request, reply_id: str, body: s.SavedReplyPatch
) -> s.SavedReplyView:
    """Only the fields present change."""
    me = current_agent(request)
    changes: dict[str, Any] = {"title": body.title, "body": body.body}
    if "article_id" in body.model_fields_set:
        changes["article_id"] = body.article_id
    with db_of(request).transaction() as session:
        reply = service.update_reply(session, reply_id, me, **changes)
        return reply_view(session, request, reply, me)


@router.delete(
    "/saved-replies/{reply_id}",
    status_code=204,
    responses={**SHARED_ONLY, 409: _problem("A macro replies with it.")},
)
def delete_saved_reply(request: Request, reply_id: str) -> Response:
    with db_of(request).transaction() as session:
        service.delete_reply(session, reply_id, current_agent(request))
    return Response(status_code=204)


@router.get(
    "/conversations/{conversation_id}/saved-replies/{reply_id}/render",
    response_model=s.RenderedReply,
)
def render_saved_reply(request: Request, conversation_id: str, reply_id: str) -> s.RenderedReply:
    """The reply as the caller would send it in this conversation: placeholders filled (a
    missing value: its fallback, or nothing) and the article's link added. Nothing is sent."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        done = service.render_reply(
            session, conversation_id, reply_id, me, base_url=settings_of(request).base_url
        )
        return s.RenderedReply(
            id=done.reply.id, title=done.reply.title, html=done.html, text=done.text
        )


# --- macros -----------------------------------------------------------------------------------


@router.get("/macros", response_model=list[s.MacroView])
def list_macros(request: Request) -> list[s.MacroView]:
    """The team's shared macros and the caller's personal ones, by name."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        return [macro_view(m, me) for m in service.list_macros(session, me)]


@router.post("/macros", response_model=s.MacroView, status_code=201, responses=SHARED_ONLY)
def create_macro(request: Request, response: Response, body: s.MacroCreate) -> s.MacroView:
    """Its actions must name saved replies its users can see and active agents (422)."""
    me = current_agent(request)
    actions = [a.model_dump() for a in body.actions]
    with db_of(request).transaction() as session:
        macro = service.create_macro(
            session, me, name=body.name, actions=actions, shared=body.shared
        )
        view = macro_view(macro, me)
    response.headers["Location"] = f"/api/v1/macros/{view.id}"
    return view


@router.get("/macros/{macro_id}", response_model=s.MacroView)
def get_macro(request: Request, macro_id: str) -> s.MacroView:
    me = current_agent(request)
    with db_of(request).read_session() as session:
        return macro_view(service.get_macro(session, macro_id, me), me)


@router.patch("/macros/{macro_id}", response_model=s.MacroView, responses=SHARED_ONLY)
def update_macro(request: Request, macro_id: str, body: s.MacroPatch) -> s.MacroView:
    """Only the fields present change; `actions` replaces the whole list."""
    me = current_agent(request)
    actions = [a.model_dump() for a in body.actions] if body.actions is not None else None
    with db_of(request).transaction() as session:
        macro = service.update_macro(session, macro_id, me, name=body.name, actions=actions)
        return macro_view(macro, me)


@router.delete("/macros/{macro_id}", status_code=204, responses=SHARED_ONLY)
def delete_macro(request: Request, macro_id: str) -> Response:
    with db_of(request).transaction() as session:
        service.delete_macro(session, macro_id, current_agent(request))
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/macros/{macro_id}", response_model=s.MacroApplied)
def apply_macro(request: Request, conversation_id: str, macro_id: str) -> s.MacroApplied:
    """Every action of the macro, in order, in one transaction, as the caller: each recorded
    in the history and told to Fin as when done by hand. If one fails (422, naming it), none
    is applied."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        done = service.apply_macro(
            session, conversation_id, macro_id, me, base_url=settings_of(request).base_url
        )
        return s.MacroApplied(
            macro_id=done.macro.id,
            conversation=conversation_view(done.conversation),
            messages=[message_view(m) for m in done.messages],
        )
