"""The inbox's alerts page (``/inbox/alerts``): every agent sets which alert emails they get;
administrators also register and remove outbound webhook endpoints (the signing secret shown
once, on the page that answers the form). Without JavaScript, as the rest of the inbox: a change
is a CSRF-checked POST."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from findesk.alerts import service
from findesk.inbox.endpoints import back, guarded, render
from findesk.inbox.security import Viewer
from findesk.kit.errors import Forbidden, Problem
from findesk.kit.http import db_of, settings_of

router = APIRouter(include_in_schema=False)
ALERTS = "/inbox/alerts"


def _context(request: Request, viewer: Viewer, **extra: Any) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        prefs = service.preferences(session, viewer.agent.id)
        endpoints = list(service.list_endpoints(session)) if viewer.agent.role == "admin" else []
        return {
            "viewer": viewer,
            "prefs": {
                "email_handover": prefs.email_handover,
                "email_assigned": prefs.email_assigned,
                "digest_minutes": prefs.digest_minutes,
            },
            "endpoints": [
                {"id": e.id, "url": e.url, "events": list(e.events), "format": e.format}
                for e in endpoints
            ],
            "events": service.EVENTS,
            "formats": service.FORMATS,
            "email_configured": bool(settings_of(request).smtp_host),
            **extra,
        }


@router.get(ALERTS)
async def alerts_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_context, request, viewer)
        return render(request, "alerts.html", **context, flash=True)

    return await guarded(request, run, page=True)


@router.post(ALERTS + "/preferences")
async def save_preferences(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        digest = str(form.get("digest_minutes") or "").strip()
        db = db_of(request)

        def save() -> None:
            minutes = int(digest) if digest.isdigit() else None
            with db.transaction() as session:
                service.set_preferences(
                    session,
                    viewer.agent.id,
                    email_handover=form.get("email_handover") == "on",
                    email_assigned=form.get("email_assigned") == "on",
                    digest_minutes=minutes,
                )

        try:
            await run_in_threadpool(save)
        except Problem as exc:
            return back(ALERTS, error=exc.detail)
        return back(ALERTS, notice="Your alert emails are saved.")

    return await guarded(request, run, page=False)


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may manage webhooks.")


@router.post(ALERTS + "/webhooks")
async def create_webhook(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        url = str(form.get("url") or "").strip()
        events = [str(e) for e in form.getlist("events")]
        fmt = str(form.get("format") or "json")
        db, settings = db_of(request), settings_of(request)

        def create() -> tuple[str, str]:
            with db.transaction() as session:
                endpoint = service.create_endpoint(
                    session,
                    settings,
                    url=url,
                    events=events,
                    format=fmt,
                    created_by=viewer.agent.id,
                )
                return endpoint.url, service.signing_secret(settings, endpoint)

        try:
            created_url, secret = await run_in_threadpool(create)
        except Problem as exc:
            context = await run_in_threadpool(_context, request, viewer, error=exc.detail)
            return render(request, "alerts.html", 422, **context)
        context = await run_in_threadpool(
            _context, request, viewer, created={"url": created_url, "secret": secret}
        )
        return render(request, "alerts.html", **context)

    return await guarded(request, run, page=False)


@router.post(ALERTS + "/webhooks/{endpoint_id}/delete")
async def delete_webhook(request: Request, endpoint_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        db = db_of(request)

        def delete() -> None:
            with db.transaction() as session:
                service.delete_endpoint(session, endpoint_id)

        await run_in_threadpool(delete)
        return back(ALERTS, notice="Webhook removed.")

    return await guarded(request, run, page=False)
