"""The inbox's pages, fragments (for live refresh), form actions and live stream.

Server-rendered; every page works without JavaScript, which only adds live updates, the
formatting toolbar, typing signals and notifications. Every change is a POST carrying the
session's CSRF token and answers with a redirect back (post/redirect/get).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from findesk.agents import repository as agent_repository
from findesk.agents import service as agents
from findesk.attachments import service as attachments
from findesk.attachments.models import StoredFile
from findesk.auth import service as auth
from findesk.auth import web_sessions
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import STATUSES
from findesk.conversations.repository import ConversationFilter
from findesk.conversations.service import Author, NewMessage, owner_kind
from findesk.inbox.security import (
    COOKIE,
    SignInRequired,
    Viewer,
    load_viewer,
    require_viewer,
)
from findesk.kit.actor import agent as agent_actor
from findesk.kit.errors import Forbidden, NotFound, Problem
from findesk.kit.http import db_of, settings_of
from findesk.kit.pagination import decode_cursor, encode_cursor
from findesk.kit.timeutil import as_utc, isoformat, utcnow

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
limiter = web_sessions.SignInLimiter()

PAGE_SIZE = 25
QUEUES = {
    "waiting": "Waiting for a human",
    "mine": "Mine",
    "fin": "Fin is handling",
    "all": "All",
}
LOGIN_CSRF_COOKIE = "findesk_login_csrf"
IMAGE_TYPES = {"png", "jpg", "jpeg", "gif", "webp"}
SECURITY_HEADERS = {
    # Message bodies are sanitised on the way in; this makes any slip inert in the browser.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: data:; script-src 'self'; "
        "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _ago(value: datetime) -> str:
    seconds = max(0, int((utcnow() - as_utc(value)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


templates.env.filters["ago"] = _ago
templates.env.filters["iso"] = isoformat


def render(request: Request, name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=http_status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def back(url: str, **params: str) -> RedirectResponse:
    sep = "&" if "?" in url else "?"
    target = url + (sep + urlencode(params) if params else "")
    return RedirectResponse(target, status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/inbox"


async def guarded(
    request: Request, action: Callable[[Viewer], Awaitable[Response]], *, page: bool
) -> Response:
    """Sign-in and CSRF for every inbox route: pages send strangers to the sign-in form."""
    try:
        viewer = await require_viewer(request)
        return await action(viewer)
    except SignInRequired:
        if page and request.method == "GET":
            return back(
                "/login",
                next=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            )
        return _problem_page(request, 401, "Sign in to continue.")
    except Forbidden as exc:
        return _problem_page(request, 403, exc.detail)
    except NotFound as exc:
        return _problem_page(request, 404, exc.detail)


def _problem_page(request: Request, status: int, detail: str) -> HTMLResponse:
    return render(request, "problem.html", http_status=status, code=status, detail=detail)


# --- signing in -------------------------------------------------------------------------------


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/inbox", status_code=303)


@router.get("/login")
async def login_page(
    request: Request, next: str | None = None, error: str | None = None
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", next=_safe_next(next), error=error, csrf_token=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings_of(request).secure_cookies,
        path="/login",
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = _safe_next(str(form.get("next") or ""))
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    form_token = str(form.get("csrf_token", ""))
    if not cookie_token or not secrets.compare_digest(cookie_token, form_token):
        return _problem_page(request, 403, "The sign-in form expired. Reload the page.")
    address = request.client.host if request.client else "unknown"
    keys = (f"email:{email.strip().lower()}", f"ip:{address}")
    try:
        limiter.check(*keys)
    except web_sessions.TooManyAttempts as exc:
        response = render(
            request,
            "login.html",
            http_status=429,
            next=target,
            csrf_token=form_token,
            error=exc.detail,
        )
        response.headers.update(exc.headers)
        return response
    db = db_of(request)

    def attempt() -> web_sessions.SignedIn:
        with db.transaction() as session:
            return web_sessions.sign_in(session, email, password)

    try:
        signed_in = await run_in_threadpool(attempt)
    except Problem:
        limiter.failed(*keys)
        return render(
            request,
            "login.html",
            http_status=401,
            next=target,
            csrf_token=form_token,
            error="Wrong email or password.",
        )
    # Only the account's count: an address may be shared (an office), but clearing it on any
    # success would let one valid account reset guessing at others from the same address.
    limiter.succeeded(keys[0])
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        COOKIE,
        signed_in.session_id,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).secure_cookies,
        max_age=int(web_sessions.ABSOLUTE_TIMEOUT.total_seconds()),
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return redirect


@router.post("/logout")
async def logout(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        raw = request.cookies.get(COOKIE, "")
        db = db_of(request)

        def end() -> None:
            with db.transaction() as session:
                web_sessions.sign_out(session, raw)

        await run_in_threadpool(end)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return await guarded(request, run, page=False)


# --- the inbox --------------------------------------------------------------------------------


def _queue(params: dict[str, str]) -> str:
    queue = params.get("queue", "")
    return queue if queue in QUEUES else "waiting"


def _filter(viewer: Viewer, params: dict[str, str]) -> ConversationFilter:
    queue = _queue(params)
    status = params.get("status", "")
    statuses: tuple[str, ...]
    if status == "any":
        statuses = ()
    elif status in STATUSES:
        statuses = (status,)
    else:
        statuses = ("open",)
    return ConversationFilter(
        owner="any" if queue == "all" else queue,
        agent_id=viewer.agent.id,
        statuses=statuses,
        tag=params.get("tag") or None,
        text=(params.get("q") or "").strip()[:200] or None,
    )


def _list_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    params = dict(request.query_params)
    f = _filter(viewer, params)
    queue = _queue(params)
    cursor = params.get("cursor")
    try:
        before = decode_cursor(cursor) if cursor else None
    except Problem:
        before = None
    with db_of(request).read_session() as session:
        rows = conversations.list_conversations(session, f, limit=PAGE_SIZE + 1, before=before)
        counts = conversations.queue_counts(session, viewer.agent.id)
        agent_list = list(agents.list_agents(session))
    page = rows[:PAGE_SIZE]
    next_cursor = (
        encode_cursor(page[-1].last_activity_at, page[-1].id) if len(rows) > PAGE_SIZE else None
    )
    keep = {k: v for k, v in params.items() if k in ("queue", "status", "tag", "q") and v}
    keep.setdefault("queue", queue)
    return {
        "viewer": viewer,
        "queues": QUEUES,
        "queue": queue,
        "counts": counts,
        "items": [(c, owner_kind(c)) for c in page],
        "next_cursor": next_cursor,
        "filters": keep,
        "query": urlencode(keep),
        "statuses": STATUSES,
        "status": params.get("status", ""),
        "agents": agent_list,
    }


def _conversation_context(request: Request, viewer: Viewer, conversation_id: str) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        conversation = conversations.get_conversation(session, conversation_id)
        messages = conversations.list_messages(session, conversation_id)
        agent_list = list(agents.list_agents(session))
    return {
        "viewer": viewer,
        "conversation": conversation,
        "owner": owner_kind(conversation),
        "messages": messages,
        "agents": agent_list,
        "statuses": STATUSES,
        "image_types": IMAGE_TYPES,
    }


@router.get("/inbox")
async def inbox(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_list_context, request, viewer)
        return render(
            request,
            "inbox.html",
            **context,
            selected=None,
            notice=request.query_params.get("notice"),
        )

    return await guarded(request, run, page=True)


@router.get("/inbox/conversations/{conversation_id}")
async def conversation_page(request: Request, conversation_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_list_context, request, viewer)
        detail = await run_in_threadpool(_conversation_context, request, viewer, conversation_id)
        return render(
            request,
            "inbox.html",
            **(context | detail),
            selected=conversation_id,
            notice=request.query_params.get("notice"),
            error=request.query_params.get("error"),
        )

    return await guarded(request, run, page=True)


@router.get("/inbox/fragments/list")
async def list_fragment(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_list_context, request, viewer)
        return render(
            request, "_queue.html", **context, selected=request.query_params.get("selected")
        )

    return await guarded(request, run, page=False)


@router.get("/inbox/fragments/conversation/{conversation_id}")
async def conversation_fragment(request: Request, conversation_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        detail = await run_in_threadpool(_conversation_context, request, viewer, conversation_id)
        return render(request, "_conversation.html", **detail, query=request.url.query)

    return await guarded(request, run, page=False)


# --- acting on a conversation -----------------------------------------------------------------


def _conversation_url(request: Request, conversation_id: str) -> str:
    referer_query = request.query_params.get("from", "")
    return f"/inbox/conversations/{conversation_id}" + (
        f"?{referer_query}" if referer_query else ""
    )


async def _act(
    request: Request, conversation_id: str, change: Callable[[Any, Viewer, Any], None]
) -> Response:
    """Run ``change(session, viewer, form)`` in one transaction, then go back to the page."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                change(session, viewer, form)

        url = _conversation_url(request, conversation_id)
        try:
            await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            return back(url, error=exc.detail)
        return back(url)

    return await guarded(request, run, page=False)


@router.post("/inbox/conversations/{conversation_id}/reply")
async def reply(request: Request, conversation_id: str) -> Response:
    settings = settings_of(request)

    def change(session: Any, viewer: Viewer, form: Any) -> None:
        visibility: Literal["public", "private"] = (
            "private" if form.get("visibility") == "private" else "public"
        )
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
        if not conversation_repository.conversation_exists(session, conversation_id):
            raise NotFound(f"No conversation with id {conversation_id!r}.")
        stored: list[StoredFile] = []
        try:
            for upload in files:
                stored.append(
                    attachments.store(
                        session,
                        attachments.Upload(
                            upload.filename or "file", upload.content_type, upload.file
                        ),
                        directory=settings.attachments_dir,
                        conversation_id=conversation_id,
                        agent_id=viewer.agent.id,
                        max_bytes=settings.max_attachment_bytes,
                    )
                )
            conversations.add_message(
                session,
                conversation_id,
                NewMessage(
                    author=Author("agent", viewer.agent.id),
                    body=str(form.get("body") or ""),
                    visibility=visibility,
                    attachments=[attachments.as_attachment(s, settings.base_url) for s in stored],
                ),
                agent_actor(viewer.agent.id),
            )
        except BaseException:
            # The transaction rolls back; the files written for it must go too.
            attachments.discard(stored, settings.attachments_dir)
            raise

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/take-over")
async def take_over(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> None:
        conversations.take_over(
            session, conversation_id, viewer.agent.id, agent_actor(viewer.agent.id)
        )

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/hand-back")
async def hand_back(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> None:
        conversations.hand_back_to_fin(session, conversation_id, agent_actor(viewer.agent.id))

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/assign")
async def assign(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> None:
        target = str(form.get("agent_id") or "") or None
        conversations.update_conversation(
            session, conversation_id, {"assignee_id": target}, agent_actor(viewer.agent.id)
        )

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/status")
async def set_status(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> None:
        conversations.update_conversation(
            session,
            conversation_id,
            {"status": str(form.get("status") or "")},
            agent_actor(viewer.agent.id),
        )

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/tags")
async def set_tags(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> None:
        tags = [t for t in str(form.get("tags") or "").split(",")]
        conversations.update_conversation(
            session, conversation_id, {"tags": tags}, agent_actor(viewer.agent.id)
        )

    return await _act(request, conversation_id, change)


# --- live -------------------------------------------------------------------------------------

HEARTBEAT_SECONDS = 15.0


@router.get("/inbox/live")
async def live(request: Request) -> Response:
    """Server-Sent Events: every conversation change, resumable with ``Last-Event-ID``."""
    viewer = None
    try:
        viewer = await require_viewer(request)
    except SignInRequired:
        return _problem_page(request, 401, "Sign in to continue.")
    feed = request.app.state.live
    resume = request.headers.get("last-event-id") or request.query_params.get("after")
    after_id = int(resume) if resume and resume.isdigit() else feed.last_id

    async def stream() -> AsyncIterator[bytes]:
        queue = feed.subscribe()
        try:
            yield b"retry: 2000\n\n"
            seen = after_id
            for item in await run_in_threadpool(feed.backlog, after_id):
                seen = item["id"]
                yield _sse(item)
            while not await request.is_disconnected():
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    # A stream must not outlive its session (signed out, password changed).
                    if feed.was_dropped(queue) or await load_viewer(request) is None:
                        return
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    return
                if item["id"] > seen:
                    seen = item["id"]
                    yield _sse(item)
        finally:
            feed.unsubscribe(queue)

    assert viewer is not None
    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(item: dict[str, Any]) -> bytes:
    return f"id: {item['id']}\nevent: change\ndata: {json.dumps(item)}\n\n".encode()


# --- administration ---------------------------------------------------------------------------


def _admin_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        return {
            "viewer": viewer,
            "agents": list(agent_repository.list_all(session)),
            "clients": list(auth.list_clients(session)),
        }


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may do this.")


@router.get("/inbox/admin")
async def admin_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_admin_context, request, viewer)
        return render(
            request,
            "admin.html",
            **context,
            notice=request.query_params.get("notice"),
            error=request.query_params.get("error"),
        )

    return await guarded(request, run, page=True)


@router.post("/inbox/admin/agents")
async def admin_create_agent(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        db = db_of(request)

        def create() -> None:
            with db.transaction() as session:
                agents.create_agent(
                    session,
                    email=str(form.get("email") or ""),
                    name=str(form.get("name") or ""),
                    alias=str(form.get("alias") or "") or None,
                    role="admin" if form.get("role") == "admin" else "agent",
                    password=str(form.get("password") or ""),
                )

        try:
            await run_in_threadpool(create)
        except Problem as exc:
            return back("/inbox/admin", error=exc.detail)
        return back("/inbox/admin", notice=f"Agent {form.get('email')} created.")

    return await guarded(request, run, page=False)


@router.post("/inbox/admin/clients")
async def admin_create_client(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        form = await request.form()
        name = str(form.get("name") or "").strip() or "Fin"
        db = db_of(request)

        def create() -> tuple[str, str]:
            with db.transaction() as session:
                client, secret = auth.create_client(session, name)
                return client.id, secret

        client_id, secret = await run_in_threadpool(create)
        context = await run_in_threadpool(_admin_context, request, viewer)
        # The secret is shown on this one response only, never stored in clear.
        return render(request, "admin.html", **context, new_client=(client_id, secret))

    return await guarded(request, run, page=False)


@router.post("/inbox/admin/clients/{client_id}/revoke")
async def admin_revoke_client(request: Request, client_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        db = db_of(request)

        def revoke() -> None:
            with db.transaction() as session:
                auth.revoke_client(session, client_id)

        await run_in_threadpool(revoke)
        return back("/inbox/admin", notice=f"Client {client_id} revoked.")

    return await guarded(request, run, page=False)
