"""The inbox's pages, fragments (for live refresh), form actions and live stream.

Server-rendered; every page works without JavaScript, which only adds live updates, the
formatting toolbar, typing signals and notifications. Every change is a POST carrying the
session's CSRF token and answers with a redirect back (post/redirect/get).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response

from findesk.agents import repository as agent_repository
from findesk.agents import service as agents
from findesk.attachments import service as attachments
from findesk.attachments.models import StoredFile
from findesk.audit import service as audit
from findesk.audit.models import AuditEntry
from findesk.audit.service import AuditActor, AuditFilter
from findesk.auth import service as auth
from findesk.auth import web_sessions
from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import STATUSES
from findesk.conversations.repository import ConversationFilter
from findesk.conversations.service import Author, NewMessage, owner_kind
from findesk.fin_ledger import service as fin_ledger
from findesk.inbox import timeline
from findesk.inbox.attributes import label, typed
from findesk.inbox.attributes import rows as attribute_rows
from findesk.inbox.security import (
    COOKIE,
    SignInRequired,
    Viewer,
    audit_actor,
    load_viewer,
    require_viewer,
)
from findesk.kit import text as text_rules
from findesk.kit.actor import agent as agent_actor
from findesk.kit.errors import Forbidden, Invalid, NotFound, Problem
from findesk.kit.http import client_address, db_of, settings_of
from findesk.kit.pagination import decode_cursor, encode_cursor
from findesk.kit.streams import (
    RETRY_AFTER_SECONDS,
    SlotStreamingResponse,
    StreamSlots,
    evicted_message,
)
from findesk.kit.timeutil import as_utc, isoformat, utcnow
from findesk.notifier import service as outbox
from findesk.notifier.models import OutboxEvent
from findesk.objects import service as objects
from findesk.replies import service as replies
from findesk.search import service as search
from findesk.sla import service as sla
from findesk.teams import service as teams
from findesk.tickets import service as tickets
from findesk.tickets.models import FIN_ATTRIBUTE as TICKET_ATTRIBUTE
from findesk.users import service as users

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
# A conversation shows its newest messages; older ones load on demand (?before=<message id>).
MESSAGES_SHOWN = 50
WINDOW_KEYS = ("before", "after")
QUEUES = {
    "waiting": "Waiting for a human",
    "mine": "Mine",
    "fin": "Fin is handling",
    "snoozed": "Snoozed",
    "all": "All",
}
LOGIN_CSRF_COOKIE = "findesk_login_csrf"
RESUME_ID = re.compile(r"[0-9]{1,18}")
FLASH_COOKIE = "findesk_flash"
# What an agent is told after changing a conversation's status; resolving or closing one moves
# on to the next conversation of the queue.
STATUS_NOTICES = {"resolved": "Resolved.", "closed": "Closed.", "open": "Reopened."}
ENDED = frozenset({"resolved", "closed"})
# How long the conversation's "Snooze" menu offers, in minutes, with its words.
SNOOZE_CHOICES = {
    "60": "for 1 hour",
    "240": "for 4 hours",
    "1440": "for a day",
    "4320": "for 3 days",
    "10080": "for a week",
}
OTHER_CONVERSATIONS = 5  # of the same end user, in the side panel
OBJECT_CARDS = 5  # the newest custom objects linked to the end user or conversation
FLASH_MAX = 500  # characters of a notice or error kept for the next page
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


def _since(value: datetime) -> str:
    """How long ago, in its largest unit: ``3d``, ``5h``, ``12m``, ``<1m``."""
    seconds = max(0, int((utcnow() - as_utc(value)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "<1m"


def _from_now(value: datetime) -> str:
    """How long until, in its largest unit: ``in 3d``, ``in 5h``, ``in 12m``, ``in <1m``;
    to the nearest minute first, so that a snooze "for a day" reads ``in 1d`` as it starts."""
    seconds = max(0, round((as_utc(value) - utcnow()).total_seconds() / 60) * 60)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return "in <1m"


def _ago(value: datetime) -> str:
    since = _since(value)
    return "just now" if since == "<1m" else f"{since} ago"


templates.env.filters["ago"] = _ago
templates.env.filters["since"] = _since
templates.env.filters["from_now"] = _from_now
templates.env.filters["iso"] = isoformat
templates.env.globals["limits"] = text_rules  # each kind of field's limit, for the forms


def render(
    request: Request, name: str, http_status: int = 200, *, flash: bool = False, **context: Any
) -> HTMLResponse:
    """A page; with ``flash``, it shows (and forgets) the notice or error ``back`` left."""
    message = _flash_of(request) if flash else {}
    context = {**message, **context}
    response = templates.TemplateResponse(request, name, context, status_code=http_status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    if message:
        response.delete_cookie(FLASH_COOKIE, path="/inbox")
    return response


def back(
    url: str, *, notice: str | None = None, error: str | None = None, **params: str
) -> RedirectResponse:
    """Redirect (303) after a form; ``params`` go in the URL. A ``notice`` or ``error`` goes in a
    short-lived cookie, for the next page to show: were it in the URL, any link could make
    findesk's pages say anything. (The article pages' ``notice`` is a key into their own
    messages, and travels in ``params``.)"""
    sep = "&" if "?" in url else "?"
    target = url + (sep + urlencode(params) if params else "")
    response = RedirectResponse(target, status_code=303)
    message = {k: v[:FLASH_MAX] for k, v in (("notice", notice), ("error", error)) if v}
    if message:
        response.set_cookie(
            FLASH_COOKIE,
            urlencode(message),
            max_age=60,
            path="/inbox",
            httponly=True,
            samesite="strict",
        )
    return response


def _flash_of(request: Request) -> dict[str, str]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {}
    return {k: v for k, v in parse_qsl(raw) if k in ("notice", "error")}


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
    address = client_address(request) or "unknown"
    try:
        signed_in = await web_sessions.sign_in(
            db_of(request), request.app.state.passwords, email, password, address
        )
    except Problem as exc:  # a wrong password (401), too many attempts (429), too busy (503)
        response = render(
            request,
            "login.html",
            http_status=exc.status,
            next=target,
            csrf_token=form_token,
            error=exc.detail,
        )
        if "Retry-After" in exc.headers:
            response.headers["Retry-After"] = exc.headers["Retry-After"]
        return response

    def present() -> None:
        with db_of(request).transaction() as session:
            teams.signed_in(session, signed_in.agent.id)

    await run_in_threadpool(present)
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
                teams.signed_out(session, viewer.agent.id)  # routing gives them no more

        await run_in_threadpool(end)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return await guarded(request, run, page=False)


# --- the inbox --------------------------------------------------------------------------------


def _queue(params: dict[str, str]) -> str:
    if _search_text(params):
        # A search looks in every queue, unless asked to stay "in this queue".
        within = params.get("within", "")
        return within if within in QUEUES else "all"
    queue = params.get("queue", "")
    return queue if queue in QUEUES else "waiting"


def _search_text(params: dict[str, str]) -> str:
    return (params.get("q") or "").strip()[: search.MAX_QUERY]


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
    return ConversationFilter.queue(
        queue,
        viewer.agent.id,
        statuses=statuses,
        tag=params.get("tag") or None,
        team_id=(params.get("team") or "")[:40] or None,
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
    text = _search_text(params)
    snippets: dict[str, Markup] = {}
    with db_of(request).read_session() as session:
        if text:
            found = search.search(session, text, f, limit=PAGE_SIZE, before=before)
            page = [hit.conversation for hit in found.hits]
            snippets = {hit.conversation.id: hit.snippet for hit in found.hits}
            more = found.has_more
        else:
            rows = conversations.list_conversations(session, f, limit=PAGE_SIZE + 1, before=before)
            page, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
        counts = conversations.queue_counts(session, viewer.agent.id)
        team_queues = teams.team_queues(session, viewer.agent.id)
        team = teams.find_team(session, f.team_id) if f.team_id else None
        agent_list = list(agents.list_agents(session))
        shown = [c.id for c in page]
        previews = conversations.latest_messages(session, shown)
        unread = conversations.unread_among(session, viewer.agent.id, shown)
        sla_chips = sla.chips(session, page)
    next_cursor = encode_cursor(page[-1].last_activity_at, page[-1].id) if more else None
    keep = {
        k: v
        for k, v in params.items()
        if k in ("queue", "status", "tag", "q", "within", "team") and v
    }
    keep["queue"] = queue
    return {
        "viewer": viewer,
        "queues": QUEUES,
        "queue": queue,
        "counts": counts,
        "team_queues": team_queues,
        "team": team,
        "items": [(c, owner_kind(c)) for c in page],
        "snippets": snippets,
        "previews": previews,
        "unread": unread,
        "sla_chips": sla_chips,
        "next_cursor": next_cursor,
        "filters": keep,
        "query": urlencode(keep),
        "statuses": STATUSES,
        "status": params.get("status", ""),
        "agents": agent_list,
    }


def _message_window(request: Request) -> dict[str, str]:
    """Which messages the conversation shows: those ``before`` or ``after`` a message id (the
    "Show older/newer messages" links), or the newest."""
    for key in WINDOW_KEYS:
        value = request.query_params.get(key, "").strip()
        if value:
            return {key: value[:255]}
    return {}


def _conversation_context(
    request: Request, viewer: Viewer, conversation_id: str, *, mark_read: bool
) -> dict[str, Any]:
    """What the conversation's part of the page shows. ``mark_read``: the agent is looking at
    it (the page itself, or a live refresh of a visible page), so it is read up to the newest
    message shown."""
    window = _message_window(request)
    db = db_of(request)
    with db.read_session() as session:
        conversation = conversations.get_conversation(session, conversation_id)
        try:
            page = conversations.message_page(
                session, conversation_id, limit=MESSAGES_SHOWN, **window
            )
        except Invalid:  # a link to a message of another conversation: show the newest
            window = {}
            page = conversations.message_page(session, conversation_id, limit=MESSAGES_SHOWN)
        messages = page.messages
        agent_list = list(agents.list_agents(session))
        fin_pending = _fin_pending(request, session, conversation_id)
        # The changes made between the messages shown (all of them when all are shown).
        changes = history.between(
            session, conversation_id, since=page.changes_since, until=page.changes_until
        )
        entries = timeline.build(
            messages, changes, {a.id: a for a in agent_repository.list_all(session)}
        )
        others = conversations.other_conversations(session, conversation, OTHER_CONVERSATIONS)
        tags_known = conversations.known_tags(session)
        macros = replies.list_macros(session, viewer.agent)
        read_up_to = conversations.read_up_to(session, viewer.agent.id, conversation_id)
        suggestions = users.merge_suggestions(session, conversation.user)
        object_cards = objects.cards_for(
            session,
            user_id=conversation.user_id,
            conversation_id=conversation.id,
            limit=OBJECT_CARDS,
        )
        ticket = _ticket_card(session, conversation_id)
        team = teams.find_team(session, conversation.team_id) if conversation.team_id else None
        sla_chip = sla.chip(session, conversation)
    newest_shown = max((m.seq for m in messages), default=0)
    if mark_read and newest_shown > read_up_to:
        # The only write of a GET, and only when there is something new: reading a page again
        # costs a lookup by key, never a write transaction (on SQLite, the one writer's lock).
        with db.transaction() as session:
            conversations.mark_read(session, viewer.agent.id, conversation_id, newest_shown)
    return {
        "user_attributes": attribute_rows(conversation.user.attributes),
        # The ticket attribute group (Fin's) is the ticket card's to show.
        "conversation_attributes": attribute_rows(
            {k: v for k, v in conversation.attributes.items() if k != TICKET_ATTRIBUTE}
        ),
        "ticket": ticket,
        "team": team,
        "other_conversations": [(c, owner_kind(c)) for c in others],
        "merge_suggestions": suggestions,
        "object_cards": object_cards,
        "known_tags": tags_known,
        "timeline": entries,
        "viewer": viewer,
        "conversation": conversation,
        "fin_pending": fin_pending,
        "owner": owner_kind(conversation),
        "messages": messages,
        "older_cursor": messages[0].id if page.has_more_before else None,
        "newer_cursor": messages[-1].id if page.has_more_after else None,
        "window": urlencode(window),
        "agents": agent_list,
        "statuses": STATUSES,
        "image_types": IMAGE_TYPES,
        "macros": macros,
        "snooze_choices": SNOOZE_CHOICES,
        "sla_chip": sla_chip,
    }


@router.get("/inbox")
async def inbox(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_list_context, request, viewer)
        fin_alert = await run_in_threadpool(_fin_alert, request)
        return render(
            request,
            "inbox.html",
            **context,
            fin_alert=fin_alert,
            selected=None,
            flash=True,
        )

    return await guarded(request, run, page=True)


@router.get("/inbox/conversations/{conversation_id}")
async def conversation_page(request: Request, conversation_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        # The conversation first: opening it marks it read, which its row in the queue shows.
        detail = await run_in_threadpool(
            _conversation_context, request, viewer, conversation_id, mark_read=True
        )
        context = await run_in_threadpool(_list_context, request, viewer)
        fin_alert = await run_in_threadpool(_fin_alert, request)
        return render(
            request,
            "inbox.html",
            **(context | detail),
            fin_alert=fin_alert,
            selected=conversation_id,
            flash=True,
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
        # ``read=1``: a live refresh of the conversation the agent is looking at (inbox.js
        # asks so only while the page is visible); loading older messages marks nothing.
        looking = request.query_params.get("read") == "1"
        detail = await run_in_threadpool(
            _conversation_context, request, viewer, conversation_id, mark_read=looking
        )
        # The queue's filters, for the links back; not which messages this fragment shows.
        params = request.query_params.multi_items()
        query = urlencode([(k, v) for k, v in params if k not in (*WINDOW_KEYS, "read")])
        return render(request, "_conversation.html", **detail, query=query)

    return await guarded(request, run, page=False)


@router.get("/inbox/fragments/fin-alert")
async def fin_alert_fragment(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        fin_alert = await run_in_threadpool(_fin_alert, request)
        return render(request, "_fin_alert.html", fin_alert=fin_alert)

    return await guarded(request, run, page=False)


# --- Seen by Fin: receipts on human replies, and the alert when Fin does not fetch them ------


def _fin_pending(request: Request, session: Any, conversation_id: str) -> dict[str, bool]:
    """The conversation's human replies Fin has not fetched: message id -> overdue."""
    settings = settings_of(request)
    if not settings.fin_ledger_enabled:
        return {}
    overdue_before = utcnow() - timedelta(seconds=settings.fin_fetch_alert_seconds)
    return {
        message_id: written_at < overdue_before
        for message_id, written_at in fin_ledger.pending_fetches(session, conversation_id).items()
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass(frozen=True)
class FinAlert:
    overdue: int
    window: str  # the alert window, e.g. "2 min"
    oldest_wait: str
    conversation_id: str | None
    webhook_target: str | None  # None: Fin is not configured
    last_webhook: str | None  # what became of the latest webhook call for that conversation
    refresh_in: float | None  # seconds until the banner may change with no event to tell


OVERDUE_REFRESH_SECONDS = 30.0  # the oldest wait, shown in the banner, grows


def _fin_alert(request: Request) -> FinAlert | None:
    settings = settings_of(request)
    if not settings.fin_ledger_enabled:
        return None
    window = timedelta(seconds=settings.fin_fetch_alert_seconds)
    with db_of(request).read_session() as session:
        unfetched = fin_ledger.unfetched(session, window)
        last_webhook = None
        if unfetched.overdue and unfetched.oldest_conversation_id:
            latest = outbox.list_events(
                session, conversation_id=unfetched.oldest_conversation_id, limit=1
            )
            last_webhook = _describe_delivery(latest[0]) if latest else None
    refresh_in = unfetched.next_due_in_seconds
    if unfetched.overdue:
        refresh_in = min(refresh_in or OVERDUE_REFRESH_SECONDS, OVERDUE_REFRESH_SECONDS)
    return FinAlert(
        overdue=unfetched.overdue,
        window=_duration(window.total_seconds()),
        oldest_wait=_duration(unfetched.oldest_age_seconds),
        conversation_id=unfetched.oldest_conversation_id,
        webhook_target=settings.fin_webhook_target,
        last_webhook=last_webhook,
        refresh_in=refresh_in,
    )


def _describe_delivery(event: OutboxEvent) -> str:
    if event.state == "delivered":
        delivered = f" at {isoformat(event.delivered_at)}" if event.delivered_at else ""
        return f"delivered{delivered}: Fin was told, but has not fetched the reply."
    attempts = f"{event.attempts} attempt{'' if event.attempts == 1 else 's'}"
    if event.state == "dead":
        return f"gave up after {attempts}: {event.last_error or 'no answer'}."
    if event.last_error:
        return f"failing ({attempts} so far, still retrying): {event.last_error}."
    return "not sent yet (findesk's notifier has not delivered it: see `findesk outbox status`)."


# --- acting on a conversation -----------------------------------------------------------------


def _conversation_url(request: Request, conversation_id: str) -> str:
    referer_query = request.query_params.get("from", "")
    return f"/inbox/conversations/{conversation_id}" + (
        f"?{referer_query}" if referer_query else ""
    )


async def _act(
    request: Request,
    conversation_id: str,
    change: Callable[[Any, Viewer, Any], str],
    *,
    move_on: Callable[[Any], bool] = lambda _form: False,
) -> Response:
    """Run ``change(session, viewer, form)`` in one transaction, then go back to the page with
    the notice it returns. When ``move_on(form)`` (the conversation was resolved or closed), go
    on to the next conversation of the queue the agent came from, or back to that queue."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        db = db_of(request)
        came_from = request.query_params.get("from", "")

        def apply() -> tuple[str, str | None]:
            with db.transaction() as session:
                notice = change(session, viewer, form)
                if not move_on(form):
                    return notice, None
                return notice, _next_in_queue(session, viewer, came_from, conversation_id)

        url = _conversation_url(request, conversation_id)
        try:
            notice, following = await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            return back(url, error=exc.detail)
        if move_on(form):
            query = f"?{came_from}" if came_from else ""
            if following is None:
                return back(f"/inbox{query}", notice=f"{notice} Nothing else is waiting here.")
            url = f"/inbox/conversations/{following}{query}"
            notice = f"{notice} Here is the next one."
        return back(url, notice=notice)

    return await guarded(request, run, page=False)


def _next_in_queue(
    session: Any, viewer: Viewer, came_from: str, conversation_id: str
) -> str | None:
    """The conversation the queue ``came_from`` (the list's query) now shows first, other than
    ``conversation_id``."""
    queue = _filter(viewer, dict(parse_qsl(came_from)))
    rows = conversations.list_conversations(session, queue, limit=2)
    return next((c.id for c in rows if c.id != conversation_id), None)


@router.post("/inbox/conversations/{conversation_id}/reply")
async def reply(request: Request, conversation_id: str) -> Response:
    settings = settings_of(request)

    def change(session: Any, viewer: Viewer, form: Any) -> str:
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
        return "Note added." if visibility == "private" else "Reply sent."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/take-over")
async def take_over(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        conversations.take_over(
            session, conversation_id, viewer.agent.id, agent_actor(viewer.agent.id)
        )
        return "You took over: Fin stays out of this conversation while you own it."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/hand-back")
async def hand_back(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        conversations.hand_back_to_fin(session, conversation_id, agent_actor(viewer.agent.id))
        return "Handed back to Fin."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/assign")
async def assign(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        target = str(form.get("agent_id") or "") or None
        conversations.update_conversation(
            session, conversation_id, {"assignee_id": target}, agent_actor(viewer.agent.id)
        )
        assignee = agent_repository.get(session, target) if target else None
        return f"Assigned to {assignee.name}." if assignee else "Unassigned: waiting for a human."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/status")
async def set_status(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        status = str(form.get("status") or "")
        conversations.update_conversation(
            session, conversation_id, {"status": status}, agent_actor(viewer.agent.id)
        )
        return STATUS_NOTICES.get(status, "Status saved.")

    return await _act(
        request, conversation_id, change, move_on=lambda form: form.get("status") in ENDED
    )


def _snooze_until(form: Any) -> datetime:
    """When a snooze the form asks for ends: a time (``until``, the agent's local time, which
    inbox.js tells as ``utc_offset`` minutes; UTC without scripts), else a duration (``for``,
    in minutes)."""
    until = str(form.get("until") or "").strip()
    if until:
        try:
            local = datetime.fromisoformat(until)
            offset = int(str(form.get("utc_offset") or "0"))
        except ValueError:
            raise Invalid("Give the time to snooze until as a date and a time.") from None
        if local.tzinfo is not None or not -16 * 60 <= offset <= 16 * 60:
            raise Invalid("Give the time to snooze until as a date and a time.")
        return local.replace(tzinfo=UTC) - timedelta(minutes=offset)
    minutes = str(form.get("for") or "")
    if minutes == "until":
        raise Invalid("Pick the date and time to snooze the conversation until.")
    if minutes not in SNOOZE_CHOICES:
        raise Invalid("Choose how long to snooze the conversation for.")
    return utcnow() + timedelta(minutes=int(minutes))


@router.post("/inbox/conversations/{conversation_id}/snooze")
async def snooze(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        actor = agent_actor(viewer.agent.id)
        if form.get("wake"):
            conversations.snooze(session, conversation_id, None, actor)
            return "Woken: back in its queue."
        until = _snooze_until(form)
        conversations.snooze(session, conversation_id, until, actor)
        return f"Snoozed: it comes back {_from_now(until)}."

    # Snoozing sets it aside, as resolving does: on to the next one.
    return await _act(request, conversation_id, change, move_on=lambda form: not form.get("wake"))


@router.post("/inbox/conversations/{conversation_id}/tags")
async def set_tags(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        tags = [t for t in str(form.get("tags") or "").split(",")]
        conversations.update_conversation(
            session, conversation_id, {"tags": tags}, agent_actor(viewer.agent.id)
        )
        return "Tags saved."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/attributes")
async def set_attribute(request: Request, conversation_id: str) -> Response:
    """Set one conversation attribute (a text, or a number or true/false as typed), or remove it
    (``remove``): merged as Fin's own updates are, and Fin is told."""

    def change(session: Any, viewer: Viewer, form: Any) -> str:
        key = str(form.get("key") or "").strip()
        if not key:
            raise Invalid("Name the attribute.")
        value = None if form.get("remove") else typed(str(form.get("value") or "").strip())
        conversations.update_conversation(
            session, conversation_id, {"attributes": {key: value}}, agent_actor(viewer.agent.id)
        )
        return f"Removed {label(key)}." if value is None else f"{label(key)} saved."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/merge")
async def merge_end_user(request: Request, conversation_id: str) -> Response:
    """ "Merge into…" on the end user's profile: the conversation's end user (a visitor, or a
    duplicate) into a known user, chosen from the suggestions (``user_id``) or by ``email``.
    Any agent may, as through the agent API; the history of each moved conversation says who."""

    def change(session: Any, viewer: Viewer, form: Any) -> str:
        conversation = conversations.get_conversation(session, conversation_id)
        done = users.merge_end_user(
            session,
            conversation.user_id,
            into_id=str(form.get("user_id") or "") or None,
            into_email=str(form.get("email") or "") or None,
            actor=agent_actor(viewer.agent.id),
        )
        moved = len(done.moved_conversation_ids)
        who = done.user.name or done.user.email
        return (
            f"Merged into {who}: {moved} conversation{'s' if moved != 1 else ''} moved, and Fin"
            " still knows them by the old ids."
        )

    return await _act(request, conversation_id, change)


def _ticket_card(session: Any, conversation_id: str) -> dict[str, Any]:
    """The conversation's ticket (its number, type, state and the states to move it to), or the
    customer ticket types it may be converted to."""
    ticket = tickets.ticket_of_conversation(session, conversation_id)
    states = [(s.id, s.internal_label, s.external_label) for s in tickets.list_states(session)]
    if ticket is None:
        types = [
            (t.id, t.name)
            for t in tickets.list_types(session)
            if t.category == "Customer" and not t.archived
        ]
        return {"ticket": None, "types": types, "states": states}
    return {
        "ticket": {
            "id": ticket.id,
            "number": ticket.number,
            "type": ticket.ticket_type.name,
            "icon": ticket.ticket_type.icon,
            "title": ticket.attributes.get("_default_title_"),
            "state_id": ticket.state_id,
            "state": ticket.state.internal_label,
            "external": ticket.state.external_label,
            "open": ticket.state.category != "resolved",
        },
        "types": [],
        "states": states,
    }


@router.post("/inbox/conversations/{conversation_id}/ticket")
async def convert_to_ticket(request: Request, conversation_id: str) -> Response:
    """Convert the conversation to a ticket of a customer type, with its title and description
    (a type that requires more attributes is converted through the agent API)."""

    def change(session: Any, viewer: Viewer, form: Any) -> str:
        attributes = {
            "_default_title_": str(form.get("title") or "").strip() or None,
            "_default_description_": str(form.get("description") or "").strip() or None,
        }
        ticket = tickets.convert(
            session,
            conversation_id,
            agent_actor(viewer.agent.id),
            ticket_type_id=str(form.get("ticket_type_id") or ""),
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
        return f"Converted to ticket #{ticket.number}: Fin can tell the customer."

    return await _act(request, conversation_id, change)


@router.post("/inbox/conversations/{conversation_id}/ticket/state")
async def set_ticket_state(request: Request, conversation_id: str) -> Response:
    def change(session: Any, viewer: Viewer, form: Any) -> str:
        ticket = tickets.ticket_of_conversation(session, conversation_id)
        if ticket is None:
            raise Invalid("This conversation is not a ticket.")
        ticket = tickets.update_ticket(
            session,
            ticket.id,
            agent_actor(viewer.agent.id),
            state_id=str(form.get("state_id") or "") or None,
        )
        return f"Ticket #{ticket.number}: {ticket.state.internal_label}."

    return await _act(request, conversation_id, change)


BULK_MAX = 100  # conversations one bulk action may change


@router.post("/inbox/bulk")
async def bulk(request: Request) -> Response:
    """One action on the conversations ticked in a queue (resolve, close, assign, add a tag),
    all in one transaction: every one changes, through the same actions as one by one (Fin is
    told of each), or none does."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        came_from = request.query_params.get("from", "")
        url = "/inbox" + (f"?{came_from}" if came_from else "")
        picked = list(dict.fromkeys(str(i) for i in form.getlist("ids")))
        action = str(form.get("action") or "")
        if not picked:
            return back(url, error="Tick the conversations to change first.")
        if len(picked) > BULK_MAX:
            return back(url, error=f"At most {BULK_MAX} conversations at once.")
        db = db_of(request)
        actor = agent_actor(viewer.agent.id)

        def apply() -> str:
            with db.transaction() as session:
                if action in ENDED:
                    change: dict[str, Any] = {"status": action}
                    done = STATUS_NOTICES[action].rstrip(".").lower()
                elif action == "assign":
                    target = str(form.get("agent_id") or "") or None
                    assignee = agent_repository.get(session, target) if target else None
                    change = {"assignee_id": target}
                    done = f"assigned to {assignee.name}" if assignee else "left waiting"
                elif action == "tag":
                    tag = str(form.get("tag") or "").strip()
                    if not tag:
                        raise Invalid("Name the tag to add.")
                    change, done = {}, f"tagged {tag}"
                else:
                    raise Invalid("Pick what to do with the selected conversations.")
                for conversation_id in picked:
                    if action == "tag":
                        tags = conversations.get_conversation(session, conversation_id).tags
                        change = {"tags": [*tags, tag]}
                    conversations.update_conversation(session, conversation_id, change, actor)
            count = len(picked)
            return f"{count} conversation{'s' if count != 1 else ''} {done}."

        try:
            notice = await run_in_threadpool(apply)
        except Problem as exc:
            return back(url, error=exc.detail)
        return back(url, notice=notice)

    return await guarded(request, run, page=False)


# --- live -------------------------------------------------------------------------------------

HEARTBEAT_SECONDS = 15.0
# How often an open live stream tells that its agent is still there (``teams.service.seen``):
# an online agent whose tabs are all closed turns away after FINDESK_PRESENCE_AWAY_MINUTES.
SEEN_EVERY_SECONDS = 60.0


def _note_seen(request: Request, agent_id: str) -> None:
    with db_of(request).transaction() as session:
        teams.seen(session, agent_id)


@router.get("/inbox/live")
async def live(request: Request) -> Response:
    """Server-Sent Events: every conversation change, resumable with ``Last-Event-ID``.

    A session holds at most FINDESK_LIVE_STREAMS_PER_SESSION streams (a new one ends its oldest,
    see ``kit.streams``); a process FINDESK_LIVE_STREAMS_MAX in all (503 beyond)."""
    try:
        viewer = await require_viewer(request)
    except SignInRequired:
        return _problem_page(request, 401, "Sign in to continue.")
    streams: StreamSlots = request.app.state.live_streams
    slot = streams.open(viewer.session_hash)
    if slot is None:
        busy = _problem_page(request, 503, "Too many live connections; try again shortly.")
        busy.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return busy
    feed = request.app.state.live
    resume = request.headers.get("last-event-id") or request.query_params.get("after")
    # ASCII digits, within a 64-bit id ("²" is a digit to str.isdigit but not to int()).
    after_id = int(resume) if resume and RESUME_ID.fullmatch(resume) else feed.last_id

    async def stream() -> AsyncIterator[bytes]:
        queue = feed.subscribe()
        # What the feed passes on from now: rows after ``horizon``, and rows below it that
        # committed late (see live.broker); the backlog may hold some of either.
        horizon = feed.last_id

        def wake() -> None:
            with suppress(asyncio.QueueFull):  # full: it ends once the feed drops it
                queue.put_nowait(None)

        slot.on_evict = wake
        try:
            if slot.evicted:  # pushed out before it began
                yield evicted_message()
                return
            yield b"retry: 2000\n\n"
            await run_in_threadpool(_note_seen, request, viewer.agent.id)
            seen_at = asyncio.get_running_loop().time()
            sent: set[int] = set()
            for item in await run_in_threadpool(feed.backlog, after_id):
                sent.add(item["id"])
                yield _sse(item)
            while not await request.is_disconnected():
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    item = _QUIET
                if slot.evicted:  # a newer stream of this session took its place
                    yield evicted_message()
                    return
                if item is _QUIET:
                    # A stream must not outlive its session (signed out, password changed).
                    if feed.was_dropped(queue) or await load_viewer(request) is None:
                        return
                    yield b": keep-alive\n\n"
                    now = asyncio.get_running_loop().time()
                    if now - seen_at >= SEEN_EVERY_SECONDS:
                        await run_in_threadpool(_note_seen, request, viewer.agent.id)
                        seen_at = now
                elif item is None:
                    return
                elif item["id"] not in sent and (item["id"] > after_id or item["id"] <= horizon):
                    yield _sse(item)
        finally:
            feed.unsubscribe(queue)

    return SlotStreamingResponse(
        streams,
        slot,
        stream(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


_QUIET: dict[str, Any] = {}  # no change within a heartbeat


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
            flash=True,
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
                    by=audit_actor(request, viewer),
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
                client, secret = auth.create_client(session, name, by=audit_actor(request, viewer))
                return client.id, secret

        try:
            client_id, secret = await run_in_threadpool(create)
        except Problem as exc:
            return back("/inbox/admin", error=exc.detail)
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
                auth.revoke_client(session, client_id, by=audit_actor(request, viewer))

        await run_in_threadpool(revoke)
        return back("/inbox/admin", notice=f"Client {client_id} revoked.")

    return await guarded(request, run, page=False)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _agent_admin_context(request: Request, viewer: Viewer, agent_id: str) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        agent = agents.get_agent(session, agent_id)
        tokens = list(auth.list_agent_tokens(session, agent.id))
        refusal = agents.deactivation_refusal(session, agent)
        return {
            "viewer": viewer,
            "agent": agent,
            "tokens": tokens,
            "live_tokens": _plural(sum(t.revoked_at is None for t in tokens), "personal token"),
            "open_conversations": _plural(
                conversations.queue_counts(session, agent.id)["mine"], "open conversation"
            ),
            "refusal": refusal.detail if refusal is not None else None,
        }


@router.get("/inbox/admin/agents/{agent_id}")
async def admin_agent_page(request: Request, agent_id: str) -> Response:
    """One agent: its personal tokens (revoke), and deactivating or reactivating it."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_agent_admin_context, request, viewer, agent_id)
        return render(
            request,
            "admin_agent.html",
            **context,
            flash=True,
        )

    return await guarded(request, run, page=True)


async def _agent_admin_action(
    request: Request, agent_id: str, action: Callable[[Any, AuditActor], str]
) -> Response:
    """Run ``action(session, actor)`` (it returns the notice) in one transaction; back to the
    agent's page with the notice or the refusal."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        db = db_of(request)
        actor = audit_actor(request, viewer)

        def apply() -> str:
            with db.transaction() as session:
                agents.get_agent(session, agent_id)
                return action(session, actor)

        url = f"/inbox/admin/agents/{agent_id}"
        try:
            notice = await run_in_threadpool(apply)
        except NotFound:
            raise
        except Problem as exc:
            return back(url, error=exc.detail)
        return back(url, notice=notice)

    return await guarded(request, run, page=False)


@router.post("/inbox/admin/agents/{agent_id}/deactivate")
async def admin_deactivate_agent(request: Request, agent_id: str) -> Response:
    def deactivate(session: Any, actor: AuditActor) -> str:
        done = agents.deactivate_agent(session, agent_id, by=actor)
        return (
            f"{done.agent.email} is deactivated: signed out, "
            f"{_plural(done.tokens_revoked, 'personal token')} revoked, "
            f"{_plural(len(done.unassigned_conversation_ids), 'open conversation')} back in "
            "the waiting queue."
        )

    return await _agent_admin_action(request, agent_id, deactivate)


@router.post("/inbox/admin/agents/{agent_id}/reactivate")
async def admin_reactivate_agent(request: Request, agent_id: str) -> Response:
    def reactivate(session: Any, actor: AuditActor) -> str:
        agent = agents.reactivate_agent(session, agent_id, by=actor)
        return f"{agent.email} is active again and can sign in."

    return await _agent_admin_action(request, agent_id, reactivate)


@router.post("/inbox/admin/agents/{agent_id}/tokens/{token_id}/revoke")
async def admin_revoke_agent_token(request: Request, agent_id: str, token_id: str) -> Response:
    def revoke(session: Any, actor: AuditActor) -> str:
        auth.revoke_agent_token(session, token_id, agent_id=agent_id, by=actor)
        return f"Token {token_id} revoked."

    return await _agent_admin_action(request, agent_id, revoke)


AUDIT_PAGE_SIZE = 50
AUDIT_FILTERS = ("action", "actor", "target", "since", "until")
AUDIT_WHO = {"cli": "Command line (CLI)", "system": "findesk itself"}
AUDIT_DETAIL_LABELS = {
    "email": "Email",
    "name": "Name",
    "alias": "Alias",
    "role": "Role",
    "bot": "Bot",
    "can_sign_in": "Can sign in",
    "agent_id": "Agent",
    "agent_email": "Agent email",
}


def _audit_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(_audit_value(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_audit_value(v)}" for k, v in value.items())
    return str(value)


def _audit_row(entry: AuditEntry) -> dict[str, Any]:
    """One entry as a person reads it: labels and text, never the raw JSON."""
    return {
        "id": entry.id,
        "at": entry.at,
        "when": as_utc(entry.at).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "who": AUDIT_WHO.get(entry.actor_kind, entry.actor_label),
        "actor_kind": entry.actor_kind,
        "actor_filter": entry.actor_agent_id or entry.actor_kind,
        "address": entry.address,
        "action": entry.action,
        "action_label": audit.ACTIONS.get(entry.action, entry.action),
        "target_type": audit.TARGET_TYPES.get(entry.target_type, entry.target_type),
        "target_id": entry.target_id,
        "details": [
            (AUDIT_DETAIL_LABELS.get(k, k.replace("_", " ").capitalize()), _audit_value(v))
            for k, v in (entry.detail or {}).items()
        ],
    }


def _audit_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    params = request.query_params
    given = {k: (params.get(k) or "").strip()[:320] for k in AUDIT_FILTERS}
    if given["action"] not in audit.ACTIONS:
        given["action"] = ""
    errors: list[str] = []
    since = until = None
    try:
        since = audit.parse_moment(given["since"]) if given["since"] else None
    except Problem as exc:
        errors.append(f"From: {exc.detail}")
        given["since"] = ""
    try:
        until = audit.parse_moment(given["until"], end=True) if given["until"] else None
    except Problem as exc:
        errors.append(f"Until: {exc.detail}")
        given["until"] = ""
    raw_before = params.get("before", "")
    before = int(raw_before) if raw_before.isdigit() and len(raw_before) < 19 else None
    f = AuditFilter(
        action=given["action"] or None,
        actor=given["actor"] or None,
        target_id=given["target"][:64] or None,
        since=since,
        until=until,
    )
    with db_of(request).read_session() as session:
        page = audit.list_entries(session, f, before=before, limit=AUDIT_PAGE_SIZE)
        rows = [_audit_row(e) for e in page.entries]
        actors = list(audit.agent_actors(session))
    keep = {k: v for k, v in given.items() if v}
    return {
        "viewer": viewer,
        "rows": rows,
        "actions": audit.ACTIONS,
        "actors": actors,
        "filters": given,
        "filtered": bool(keep),
        "query": urlencode(keep),
        "next_before": page.next_before,
        "paged": before is not None,
        "errors": errors,
    }


@router.get("/inbox/admin/audit")
async def admin_audit_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context = await run_in_threadpool(_audit_context, request, viewer)
        return render(request, "admin_audit.html", **context)

    return await guarded(request, run, page=True)
