"""The inbox's pages of custom objects: every object linked to a conversation or its end user
(the side panel shows the newest few), and the administrators' page of object types (list,
define, delete). Without JavaScript, as the rest of the inbox: a change is a CSRF-checked POST
answered with a redirect and a notice or the refusal."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from findesk.conversations import service as conversations
from findesk.inbox.endpoints import back, guarded, render
from findesk.inbox.security import Viewer
from findesk.kit.errors import Forbidden, Invalid, Problem
from findesk.kit.http import db_of
from findesk.objects import service as objects
from findesk.objects.schemas import ATTRIBUTE_TYPES, ObjectTypeCreate

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
TYPES = "/inbox/admin/objects"


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1


def _context(request: Request, viewer: Viewer, conversation_id: str) -> dict[str, Any]:
    page = _page_number(request)
    with db_of(request).read_session() as session:
        conversation = conversations.get_conversation(session, conversation_id)
        cards = objects.cards_for(
            session,
            user_id=conversation.user_id,
            conversation_id=conversation.id,
            limit=PER_PAGE,
            offset=(page - 1) * PER_PAGE,
        )
        return {
            "viewer": viewer,
            "conversation": conversation,
            "cards": cards,
            "page": page,
            "per_page": PER_PAGE,
        }


@router.get("/inbox/conversations/{conversation_id}/objects")
async def objects_page(request: Request, conversation_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_context, request, viewer, conversation_id)
        return render(request, "objects.html", **context)

    return await guarded(request, run, page=True)


# --- object types (administrators) -------------------------------------------------------------


def _types_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        found = objects.list_types(session, viewer.agent)
        return {
            "viewer": viewer,
            "types": found,
            "counts": objects.instance_counts(session, found),
            "attribute_types": ATTRIBUTE_TYPES,
        }


@router.get(TYPES)
async def types_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_types_context, request, viewer)
        return render(request, "object_types.html", **context, flash=True)

    return await guarded(request, run, page=True)


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may define custom object types.")


def _attribute_lines(text: str) -> list[dict[str, Any]]:
    """``name type Label words`` a line, as the form's help says."""
    attributes: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) < 2:
            raise Invalid(f"Attribute line {number}: give a name and a type.")
        name, kind, label = words[0], words[1], " ".join(words[2:]) or None
        attributes.append({"name": name, "type": kind, "label": label})
    return attributes


def _checked_type(form: Any) -> ObjectTypeCreate:
    try:
        return ObjectTypeCreate.model_validate(
            {
                "identifier": str(form.get("identifier") or "").strip(),
                "name": str(form.get("name") or "").strip() or None,
                "attributes": _attribute_lines(str(form.get("attributes") or "")),
                "title_attribute": str(form.get("title_attribute") or "").strip() or None,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = " ".join(str(p) for p in first["loc"])
        raise Invalid(f"The type is not valid: {where}: {first['msg']}.") from None


@router.post(TYPES)
async def create_type(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        db = db_of(request)

        def create() -> str:
            body = _checked_type(form)
            with db.transaction() as session:
                made = objects.create_type(
                    session,
                    viewer.agent,
                    identifier=body.identifier,
                    name=body.name,
                    attributes=body.attributes,
                    title_attribute=body.title_attribute,
                )
                return made.identifier

        _require_admin(viewer)
        try:
            identifier = await run_in_threadpool(create)
        except Problem as exc:
            return back(TYPES, error=exc.detail)
        return back(TYPES, notice=f"Type {identifier} created.")

    return await guarded(request, run, page=False)


@router.post(TYPES + "/{identifier}/delete")
async def delete_type(request: Request, identifier: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        db = db_of(request)

        def delete() -> None:
            with db.transaction() as session:
                objects.delete_type(session, viewer.agent, identifier)

        _require_admin(viewer)
        try:
            await run_in_threadpool(delete)
        except Problem as exc:
            return back(TYPES, error=exc.detail)
        return back(TYPES, notice=f"Type {identifier} deleted.")

    return await guarded(request, run, page=False)
