"""The inbox's Tickets page: every ticket, newest change first, filtered by state and type, each
linking to the conversation that holds its thread. Converting and moving a ticket happen in the
conversation's side panel (``inbox.endpoints``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from findesk.inbox.endpoints import guarded, render
from findesk.inbox.security import Viewer
from findesk.kit.http import db_of
from findesk.tickets import service as tickets

router = APIRouter(include_in_schema=False)

TICKETS = "/inbox/tickets"
PER_PAGE = 50


def _page_number(raw: str) -> int:
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1


def _tickets_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    params = request.query_params
    with db_of(request).read_session() as session:
        states = tickets.list_states(session)
        types = tickets.list_types(session)
        state = params.get("state") or None
        kind = params.get("type") or None
        state = state if state in {s.id for s in states} else None
        kind = kind if kind in {t.id for t in types} else None
        page = _page_number(params.get("page", "1"))
        rows, total = tickets.list_tickets(
            session, state_id=state, ticket_type_id=kind, page=page, per_page=PER_PAGE
        )
        return {
            "viewer": viewer,
            "states": [(s.id, s.internal_label) for s in states],
            "types": [(t.id, t.name) for t in types],
            "state": state,
            "type": kind,
            "page": page,
            "more": page * PER_PAGE < total,
            "total": total,
            "tickets": [
                {
                    "number": t.number,
                    "title": t.attributes.get("_default_title_") or "Untitled",
                    "type": t.ticket_type.name,
                    "icon": t.ticket_type.icon,
                    "state": t.state.internal_label,
                    "open": t.state.category != "resolved",
                    "conversation_id": t.conversation_id,
                    "user": (t.user.name or t.user.email or "Visitor") if t.user else "",
                    "updated_at": t.updated_at,
                }
                for t in rows
            ],
        }


@router.get(TICKETS)
async def tickets_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_tickets_context, request, viewer)
        return render(request, "tickets.html", **context, flash=True)

    return await guarded(request, run, page=True)
