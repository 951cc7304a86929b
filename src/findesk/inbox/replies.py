"""The inbox's pages for saved replies and macros (list, create, edit, delete), and applying a
macro from a conversation.

Same rules as the rest of the inbox (``inbox.endpoints``): every page works without JavaScript,
every change is a CSRF-checked POST answered with a redirect and a notice or the refusal. Every
agent manages their personal ones here; administrators also the team's shared ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from findesk.agents import service as agents
from findesk.inbox.endpoints import back, guarded, render
from findesk.inbox.security import Viewer
from findesk.kit.errors import Forbidden, NotFound, Problem
from findesk.kit.http import db_of
from findesk.knowledge import repository as article_repository
from findesk.replies import placeholders, service
from findesk.replies.schemas import ACTION_TYPES, ACTIONS_MAX

router = APIRouter(include_in_schema=False)

REPLIES = "/inbox/saved-replies"
MACROS = "/inbox/macros"
BLANK_STEPS = 3  # empty steps offered under a macro's own, to add actions without JavaScript
STATUS_CHOICES = ("open", "resolved", "closed")
_PAIR = re.compile(r"[;\n]")


def _published_articles(session: Any) -> list[Any]:
    return list(article_repository.search(session, query=None, state="published", limit=500))


# --- saved replies ----------------------------------------------------------------------------


def _replies_context(request: Request, viewer: Viewer, reply_id: str | None) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        replies = service.list_replies(session, viewer.agent)
        editing = service.get_reply(session, reply_id, viewer.agent) if reply_id else None
        if editing is not None and not service.may_manage(viewer.agent, editing.owner_id):
            raise Forbidden("Only administrators may change the team's shared saved replies.")
        return {
            "viewer": viewer,
            "replies": replies,
            "editing": editing,
            "articles": _published_articles(session),
            "placeholders": placeholders.HELP,
            "is_admin": viewer.agent.role == "admin",
            "may_manage": lambda owner_id: service.may_manage(viewer.agent, owner_id),
        }


async def _page(
    request: Request,
    template: str,
    context_of: Callable[[Request, Viewer, str | None], dict[str, Any]],
    chosen: str | None,
) -> Response:
    """A list page (saved replies, macros), with ``chosen`` open in its form."""

    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(context_of, request, viewer, chosen)
        return render(request, template, **context, flash=True)

    return await guarded(request, run, page=True)


@router.get(REPLIES)
async def replies_page(request: Request) -> Response:
    return await _page(request, "saved_replies.html", _replies_context, None)


@router.get(REPLIES + "/{reply_id}")
async def reply_page(request: Request, reply_id: str) -> Response:
    return await _page(request, "saved_replies.html", _replies_context, reply_id)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _change(
    request: Request, url: str, action: Any, *, done: str, failed_url: str | None = None
) -> Response:
    """Run ``action(session, viewer, form)`` in one transaction; back with a notice, or to
    ``failed_url`` with the refusal."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                action(session, viewer, form)

        try:
            await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            return back(failed_url or url, error=exc.detail)
        return back(url, notice=done)

    return await guarded(request, run, page=False)


@router.post(REPLIES)
async def create_reply(request: Request) -> Response:
    def action(session: Any, viewer: Viewer, form: FormData) -> None:
        service.create_reply(
            session,
            viewer.agent,
            title=_text(form, "title"),
            body=_text(form, "body"),
            shared=_text(form, "shared") == "yes",
            article_id=_text(form, "article_id") or None,
        )

    return await _change(request, REPLIES, action, done="Saved reply created.")


@router.post(REPLIES + "/{reply_id}")
async def update_reply(request: Request, reply_id: str) -> Response:
    def action(session: Any, viewer: Viewer, form: FormData) -> None:
        service.update_reply(
            session,
            reply_id,
            viewer.agent,
            title=_text(form, "title"),
            body=_text(form, "body"),
            article_id=_text(form, "article_id") or None,
        )

    url = f"{REPLIES}/{reply_id}"
    return await _change(request, REPLIES, action, done="Saved reply changed.", failed_url=url)


@router.post(REPLIES + "/{reply_id}/delete")
async def delete_reply(request: Request, reply_id: str) -> Response:
    def action(session: Any, viewer: Viewer, form: FormData) -> None:
        service.delete_reply(session, reply_id, viewer.agent)

    return await _change(request, REPLIES, action, done="Saved reply deleted.")


# --- macros -----------------------------------------------------------------------------------


def _attributes_text(attributes: dict[str, Any]) -> str:
    return "; ".join(f"{k}={'' if v is None else v}" for k, v in attributes.items())


def _step_row(action: dict[str, Any] | None) -> dict[str, Any]:
    """A step as the form shows it: the type, and the value of the field it uses."""
    action = action or {}
    kind = action.get("type", "")
    text = ""
    if kind == "note":
        text = action.get("body", "")
    elif kind == "add_tags":
        text = ", ".join(action.get("tags") or [])
    elif kind == "set_attributes":
        text = _attributes_text(action.get("attributes") or {})
    return {
        "type": kind,
        "reply": action.get("saved_reply_id", ""),
        "agent": action.get("agent_id") or "",
        "status": action.get("status", ""),
        "text": text,
    }


def _macros_context(request: Request, viewer: Viewer, macro_id: str | None) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        editing = service.get_macro(session, macro_id, viewer.agent) if macro_id else None
        if editing is not None and not service.may_manage(viewer.agent, editing.owner_id):
            raise Forbidden("Only administrators may change the team's shared macros.")
        actions = list(editing.actions) if editing else []
        blank = min(BLANK_STEPS, ACTIONS_MAX - len(actions))
        replies = service.list_replies(session, viewer.agent)
        active = [a for a in agents.list_agents(session) if a.active]
        return {
            "viewer": viewer,
            "macros": service.list_macros(session, viewer.agent),
            "editing": editing,
            "steps": [_step_row(a) for a in actions] + [_step_row(None)] * blank,
            "action_types": ACTION_TYPES,
            "replies": replies,
            "names": {r.id: r.title for r in replies} | {a.id: a.name for a in active},
            "agents": active,
            "statuses": STATUS_CHOICES,
            "is_admin": viewer.agent.role == "admin",
            "may_manage": lambda owner_id: service.may_manage(viewer.agent, owner_id),
            "describe": _describe_step,
        }


def _describe_step(action: dict[str, Any], names: dict[str, str]) -> str:
    """A step in words; ``names``: saved replies' titles and agents' names by id."""
    kind = str(action.get("type", ""))
    label = ACTION_TYPES.get(kind, kind)
    if kind == "reply":
        return f"{label}: {names.get(action.get('saved_reply_id', ''), 'a saved reply')}"
    if kind == "add_tags":
        return f"{label}: {', '.join(action.get('tags') or [])}"
    if kind == "set_attributes":
        return f"{label}: {_attributes_text(action.get('attributes') or {})}"
    if kind == "set_status":
        return f"{label}: {action.get('status')}"
    if kind == "assign":
        agent_id = action.get("agent_id")
        return f"{label}: {names.get(agent_id, 'an agent') if agent_id else 'nobody (waiting)'}"
    return label


@router.get(MACROS)
async def macros_page(request: Request) -> Response:
    return await _page(request, "macros.html", _macros_context, None)


@router.get(MACROS + "/{macro_id}")
async def macro_page(request: Request, macro_id: str) -> Response:
    return await _page(request, "macros.html", _macros_context, macro_id)


def _actions_of(form: FormData) -> list[dict[str, Any]]:
    """The steps the form fills, in order; a step with no type is left out."""
    actions: list[dict[str, Any]] = []
    for index in range(ACTIONS_MAX):
        kind = _text(form, f"step{index}_type")
        text = _text(form, f"step{index}_text").strip()
        if not kind:
            continue
        action: dict[str, Any] = {"type": kind}
        if kind == "reply":
            action["saved_reply_id"] = _text(form, f"step{index}_reply")
        elif kind == "note":
            action["body"] = text
        elif kind == "add_tags":
            action["tags"] = [t.strip() for t in text.split(",") if t.strip()]
        elif kind == "set_attributes":
            # key=value; ...: a key with no value is removed from the conversation.
            attributes: dict[str, Any] = {}
            for pair in _PAIR.split(text):
                key, _, value = pair.partition("=")
                if key.strip():
                    attributes[key.strip()] = value.strip() or None
            action["attributes"] = attributes
        elif kind == "set_status":
            action["status"] = _text(form, f"step{index}_status")
        elif kind == "assign":
            action["agent_id"] = _text(form, f"step{index}_agent") or None
        actions.append(action)
    return actions


@router.post(MACROS)
async def create_macro(request: Request) -> Response:
    def action(session: Any, viewer: Viewer, form: FormData) -> None:
        service.create_macro(
            session,
            viewer.agent,
            name=_text(form, "name"),
            actions=_actions_of(form),
            shared=_text(form, "shared") == "yes",
        )

    return await _change(request, MACROS, action, done="Macro created.")


@router.post(MACROS + "/{macro_id}")
async def update_macro(request: Request, macro_id: str) -> Response:
    def action(session: Any, viewer: Viewer, form: FormData) -> None:
        service.update_macro(
            session, macro_id, viewer.agent, name=_text(form, "name"), actions=_actions_of(form)
        )

    url = f"{MACROS}/{macro_id}"
    return await _change(request, MACROS, action, done="Macro changed.", failed_url=url)


@router.post(MACROS + "/{macro_id}/delete")
async def delete_macro(request: Request, macro_id: str) -> Response:
    def action(session: Any, viewer: Viewer, form: FormData) -> None:
        service.delete_macro(session, macro_id, viewer.agent)

    return await _change(request, MACROS, action, done="Macro deleted.")


# --- in a conversation ------------------------------------------------------------------------


@router.post("/inbox/conversations/{conversation_id}/macros")
async def apply_macro(request: Request, conversation_id: str) -> Response:
    """Apply the chosen macro; back to the conversation with what was done, or why not."""
    from_query = request.query_params.get("from", "")
    url = f"/inbox/conversations/{conversation_id}" + (f"?{from_query}" if from_query else "")

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        macro_id = _text(form, "macro_id")
        db = db_of(request)
        base_url = request.app.state.settings.base_url

        def apply() -> str:
            with db.transaction() as session:
                done = service.apply_macro(
                    session, conversation_id, macro_id, viewer.agent, base_url=base_url
                )
                return done.macro.name

        try:
            name = await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            return back(url, error=exc.detail)
        return back(url, notice=f"Macro “{name}” applied.")

    return await guarded(request, run, page=False)
