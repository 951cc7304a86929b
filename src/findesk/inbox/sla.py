"""The administrators' page of SLA policies: list, add, edit, reorder, delete. Without
JavaScript, as the rest of the inbox: a change is a CSRF-checked POST (``guarded``), then a
redirect back with a notice or an error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from findesk.audit.service import AuditActor
from findesk.inbox import forms
from findesk.inbox.endpoints import back, guarded, render
from findesk.inbox.security import Viewer, audit_actor
from findesk.kit.errors import Forbidden, Problem
from findesk.kit.http import db_of
from findesk.sla import service as sla
from findesk.sla.models import ESCALATIONS
from findesk.sla.schemas import PolicyIn, PolicyPatch
from findesk.teams import service as teams

router = APIRouter(include_in_schema=False)
PAGE = "/inbox/admin/sla"
MINUTE_FIELDS = ("first_response_minutes", "next_response_minutes", "resolution_minutes")


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may manage SLA policies.")


def _refusal(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part != "__root__")
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where.replace('_', ' ')}: {message}" if where else message


def _fields(form: FormData) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": forms.text(form, "name"),
        "team_id": forms.text(form, "team_id") or None,
        "priority": forms.text(form, "priority") or None,
        "escalation": forms.text(form, "escalation") or "notify",
        "escalation_team_id": forms.text(form, "escalation_team_id") or None,
    }
    for name in MINUTE_FIELDS:
        fields[name] = forms.whole_number(form, name)
    return fields


def _context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        found = teams.list_teams(session)
        return {
            "viewer": viewer,
            "policies": sla.list_policies(session),
            "teams": found,
            "team_names": {t.id: t.name for t in found},
            "escalations": ESCALATIONS,
        }


@router.get(PAGE)
async def policies_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_context, request, viewer)
        editing = None
        wanted = request.query_params.get("edit")
        if wanted:
            editing = next((p for p in context["policies"] if p.id == wanted), None)
        return render(request, "sla.html", **context, editing=editing, flash=True)

    return await guarded(request, run, page=True)


async def _change(request: Request, change: Any, done: str) -> Response:
    """Run ``change(session, form, by)`` for an admin in a transaction (``by``: the admin, for
    the audit log); back to the page."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        by = audit_actor(request, viewer)

        def apply() -> None:
            with db_of(request).transaction() as session:
                change(session, form, by)

        try:
            await run_in_threadpool(apply)
        except ValidationError as exc:
            return back(PAGE, error=_refusal(exc))
        except Problem as exc:
            if isinstance(exc, Forbidden):
                raise
            return back(PAGE, error=exc.detail)
        return back(PAGE, notice=done)

    return await guarded(request, run, page=False)


@router.post(PAGE)
async def create_policy(request: Request) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        sla.create_policy(session, PolicyIn(**_fields(form)), by=by)

    return await _change(request, change, "Policy created.")


@router.post(PAGE + "/{policy_id}")
async def update_policy(request: Request, policy_id: str) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        sla.update_policy(session, policy_id, PolicyPatch(**_fields(form)), by=by)

    return await _change(request, change, "Policy saved.")


@router.post(PAGE + "/{policy_id}/move")
async def move_policy(request: Request, policy_id: str) -> Response:
    def change(session: Any, form: FormData, by: AuditActor) -> None:
        step = -1 if forms.text(form, "direction") == "up" else 1
        sla.move_policy(session, policy_id, step, by=by)

    return await _change(request, change, "Order saved.")


@router.post(PAGE + "/{policy_id}/delete")
async def delete_policy(request: Request, policy_id: str) -> Response:
    def change(session: Any, _form: FormData, by: AuditActor) -> None:
        sla.delete_policy(session, policy_id, by=by)

    return await _change(request, change, "Policy deleted.")
