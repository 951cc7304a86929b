"""The inbox's page of every custom object linked to a conversation or its end user (the side
panel shows the newest few). Read only; works without JavaScript."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from findesk.conversations import service as conversations
from findesk.inbox.endpoints import guarded, render
from findesk.inbox.security import Viewer
from findesk.kit.http import db_of
from findesk.objects import service as objects

router = APIRouter(include_in_schema=False)
PER_PAGE = 50


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
