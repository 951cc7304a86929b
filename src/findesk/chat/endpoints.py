"""The chat's HTTP side: the widget API (``/chat/v1``), Intercom's event hooks
(``/chat/hooks/...``), the widget's files and the demo page.

Widget calls carry the visitor's session token in ``Authorization: Bearer`` (no cookies: no
CSRF surface); errors are ``{"error": {"code", "message"}}``. CORS answers only the allowed
origins (``ChatCors``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from findesk.attachments.service import Upload
from findesk.chat import custom_channel, fin_agent_api, service
from findesk.chat.schemas import NewConversationIn, NewMessageIn, RatingIn, SessionIn
from findesk.kit.errors import Invalid, Problem
from findesk.kit.http import GuardedRoute, client_address, db_of, load_json, settings_of
from findesk.kit.settings import Settings
from findesk.kit.streams import (
    RETRY_AFTER_SECONDS,
    SlotStreamingResponse,
    StreamSlots,
    evicted_message,
)

log = logging.getLogger("findesk.chat")

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
PREFIX = "/chat/v1"
HEARTBEAT_SECONDS = 15.0
RESUME_ID = re.compile(r"[0-9]{1,18}")
T = TypeVar("T")


def chat_error(problem: Problem) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": problem.code, "message": problem.detail}},
        status_code=problem.status,
        headers=problem.headers,
    )


class _ChatRoute(GuardedRoute):
    """Answers every refusal in the widget API's shape."""

    def respond(self, problem: Problem) -> Response:
        return chat_error(problem)


class PublicChatRoute(_ChatRoute):
    async def guard(self, request: Request) -> None:
        return None


class VisitorChatRoute(_ChatRoute):
    """The visitor's session token is checked before the body is read."""

    async def guard(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise service.unauthorized("Start a chat session first.", "missing_token")
        db = db_of(request)

        def check() -> service.Visitor:
            with db.transaction() as session:
                return service.authenticate(session, token.strip())

        request.state.chat_visitor = await run_in_threadpool(check)


public = APIRouter(prefix=PREFIX, route_class=PublicChatRoute, include_in_schema=False)
visitor_api = APIRouter(prefix=PREFIX, route_class=VisitorChatRoute, include_in_schema=False)
hooks = APIRouter(prefix="/chat/hooks", include_in_schema=False)
pages = APIRouter(prefix="/chat", include_in_schema=False)


def _visitor(request: Request) -> service.Visitor:
    found: service.Visitor = request.state.chat_visitor
    return found


async def _in_transaction(request: Request, work: Callable[[Any], T]) -> T:
    db = db_of(request)

    def run() -> T:
        with db.transaction() as session:
            return work(session)

    return await run_in_threadpool(run)


async def _reading(request: Request, work: Callable[[Any], T]) -> T:
    db = db_of(request)

    def run() -> T:
        with db.read_session() as session:
            return work(session)

    return await run_in_threadpool(run)


# --- the widget API ----------------------------------------------------------------------------


@public.get("/config")
async def config(request: Request) -> Response:
    return JSONResponse(service.config(settings_of(request)))


@public.post("/session", status_code=201)
async def start_session(request: Request, body: SessionIn) -> Response:
    settings = settings_of(request)
    answer = await _in_transaction(
        request,
        lambda session: service.session_out(
            service.start_session(
                session,
                settings,
                user_id=body.user_id,
                hash_=body.user_hash,
                name=body.name,
                email=body.email,
                token=body.token,
                address=client_address(request) or "unknown",
            )
        ),
    )
    return JSONResponse(answer, status_code=201)


@visitor_api.get("/conversations")
async def conversations(request: Request) -> Response:
    visitor = _visitor(request)
    return JSONResponse(
        await _reading(request, lambda session: service.list_conversations(session, visitor))
    )


@visitor_api.post("/conversations", status_code=201)
async def start_conversation(request: Request, body: NewConversationIn) -> Response:
    visitor, settings = _visitor(request), settings_of(request)

    def work(session: Any) -> dict[str, Any]:
        conversation, message = service.start_conversation(
            session, settings, visitor, body=body.body, attachment_keys=body.attachments
        )
        return {
            "conversation": service.conversations_out(session, [conversation])[0],
            "message": service.message_out(message),
        }

    return JSONResponse(await _in_transaction(request, work), status_code=201)


@visitor_api.get("/conversations/{conversation_id}/messages")
async def messages(request: Request, conversation_id: str, after_id: str | None = None) -> Response:
    visitor = _visitor(request)
    found = await _reading(
        request, lambda session: service.list_messages(session, visitor, conversation_id, after_id)
    )
    return JSONResponse(found)


@visitor_api.post("/conversations/{conversation_id}/messages", status_code=201)
async def post_message(request: Request, conversation_id: str, body: NewMessageIn) -> Response:
    visitor, settings = _visitor(request), settings_of(request)

    def work(session: Any) -> dict[str, Any]:
        message = service.post_message(
            session,
            settings,
            visitor,
            conversation_id,
            body=body.body,
            attachment_keys=body.attachments,
            quick_reply_id=body.quick_reply_id,
        )
        return service.message_out(message)

    return JSONResponse(await _in_transaction(request, work), status_code=201)


@visitor_api.post("/attachments", status_code=201)
async def upload(request: Request) -> Response:
    visitor, settings = _visitor(request), settings_of(request)
    form = await request.form(max_files=1)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            raise Invalid("Send the file as multipart form field `file`.")
        incoming = Upload(file.filename, file.content_type, file.file)
        answer = await _in_transaction(
            request, lambda session: service.upload(session, settings, visitor, incoming)
        )
    finally:
        await form.close()
    return JSONResponse(answer, status_code=201)


@visitor_api.post("/conversations/{conversation_id}/typing", status_code=202)
async def typing(request: Request, conversation_id: str) -> Response:
    visitor = _visitor(request)
    await _in_transaction(
        request, lambda session: service.typing(session, visitor, conversation_id)
    )
    return Response(status_code=202)


@visitor_api.post("/conversations/{conversation_id}/read", status_code=204)
async def read(request: Request, conversation_id: str) -> Response:
    visitor = _visitor(request)
    await _in_transaction(
        request, lambda session: service.mark_read(session, visitor, conversation_id)
    )
    return Response(status_code=204)


@visitor_api.post("/conversations/{conversation_id}/rating", status_code=201)
async def rate(request: Request, conversation_id: str, body: RatingIn) -> Response:
    visitor = _visitor(request)
    await _in_transaction(
        request,
        lambda session: service.rate(
            session, visitor, conversation_id, rating=body.rating, remark=body.remark
        ),
    )
    return JSONResponse({"rating": body.rating}, status_code=201)


@visitor_api.get("/events")
async def events(request: Request) -> Response:
    """Server-sent events for the visitor's conversations, fed by the live feed; resumable with
    ``Last-Event-ID`` (or ``?after=``)."""
    visitor = _visitor(request)
    streams: StreamSlots = request.app.state.live_streams
    slot = streams.open(f"chat:{visitor.session_id}")
    if slot is None:
        busy = chat_error(Problem("Too many live connections.", status=503, code="busy"))
        busy.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return busy
    feed = request.app.state.live
    resume = request.headers.get("last-event-id") or request.query_params.get("after")
    resuming = bool(resume and RESUME_ID.fullmatch(resume))
    after_id = int(resume) if resume and resuming else feed.last_id
    db = db_of(request)

    def begin() -> tuple[service.StreamState, list[dict[str, Any]]]:
        with db.read_session() as session:
            state = service.stream_state(session, visitor, after_id if resuming else None)
        return state, feed.backlog(after_id) if resuming else []

    def translate(
        state: service.StreamState, items: list[dict[str, Any]]
    ) -> list[tuple[int, str, dict[str, Any]]]:
        with db.read_session() as session:
            return service.stream_events(session, state, items)

    def alive() -> bool:
        with db.read_session() as session:
            return service.session_alive(session, visitor.session_id)

    async def stream() -> AsyncIterator[bytes]:
        queue = feed.subscribe()
        horizon = feed.last_id

        def wake() -> None:
            with suppress(asyncio.QueueFull):
                queue.put_nowait(None)

        slot.on_evict = wake
        try:
            if slot.evicted:
                yield evicted_message()
                return
            yield b"retry: 2000\n\n"
            state, backlog = await run_in_threadpool(begin)
            sent: set[int] = set()
            if backlog:
                sent.update(item["id"] for item in backlog)
                for event in await run_in_threadpool(translate, state, backlog):
                    yield _sse(*event)
            while not await request.is_disconnected():
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    item = _QUIET
                if slot.evicted:
                    yield evicted_message()
                    return
                if item is _QUIET:
                    if feed.was_dropped(queue) or not await run_in_threadpool(alive):
                        return
                    yield b": keep-alive\n\n"
                    continue
                if item is None:
                    return
                if item["id"] in sent or not (item["id"] > after_id or item["id"] <= horizon):
                    continue
                batch = [item]
                while not queue.empty() and len(batch) < 100:  # what else arrived meanwhile
                    more = queue.get_nowait()
                    if more is None:
                        break
                    if more["id"] not in sent and (more["id"] > after_id or more["id"] <= horizon):
                        batch.append(more)
                # Others' rows are dropped here, in the loop: no thread, no query for them.
                batch = [found for found in batch if service.concerns(state, found)]
                if batch:
                    for event in await run_in_threadpool(translate, state, batch):
                        yield _sse(*event)
        finally:
            feed.unsubscribe(queue)

    return SlotStreamingResponse(
        streams,
        slot,
        stream(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


_QUIET: dict[str, Any] = {}


def _sse(event_id: int, name: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()


# --- Intercom's events -------------------------------------------------------------------------


def _refused() -> JSONResponse:
    return chat_error(Problem("Not authenticated.", status=401, code="unauthorized"))


@hooks.head("/fin-agent-api")
@hooks.head("/custom-channel")
async def probe() -> Response:
    """Intercom checks a callback URL answers before it saves it."""
    return Response(status_code=200)


@hooks.post("/fin-agent-api")
async def fin_agent_api_event(request: Request) -> Response:
    settings = settings_of(request)
    raw = await request.body()
    secret = settings.fin_agent_api_webhook_secret
    header = request.headers.get(fin_agent_api.SIGNATURE_HEADER)
    if not fin_agent_api.signature_matches(
        secret.get_secret_value() if secret else None, raw, header
    ):
        log.warning("fin agent api event refused: bad signature")
        return _refused()
    event = _event(raw)
    if isinstance(event, Response):
        return event
    outcome = await _in_transaction(request, lambda session: fin_agent_api.handle(session, event))
    return JSONResponse({"ok": True, "outcome": outcome})


@hooks.post("/custom-channel")
async def custom_channel_event(request: Request) -> Response:
    settings = settings_of(request)
    expected = settings.custom_channel_callback_token
    if not custom_channel.token_matches(
        expected.get_secret_value() if expected else None, request.headers.get("authorization")
    ):
        log.warning("custom channel callback refused: bad token")
        return _refused()
    event = _event(await request.body())
    if isinstance(event, Response):
        return event
    outcome = await _in_transaction(request, lambda session: custom_channel.handle(session, event))
    return JSONResponse({"ok": True, "outcome": outcome})


def _event(raw: bytes) -> dict[str, Any] | Response:
    try:
        event = load_json(raw)
    except Problem as exc:
        return chat_error(exc)
    if not isinstance(event, dict):
        return chat_error(Invalid("An event is a JSON object."))
    return event


# --- the widget's files and the demo page -----------------------------------------------------


ASSET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def _static(name: str) -> Response:
    path = STATIC / name
    if not ASSET_NAME.fullmatch(name) or not path.is_file():
        return chat_error(Problem("No such file of the chat widget.", status=404, code="not_found"))
    media_type = MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(name)[0]
    return FileResponse(
        path,
        media_type=media_type or "application/octet-stream",
        headers={
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
            # Loaded by the company's pages, whatever their cross-origin isolation.
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@pages.get("/widget.js")
async def widget_js() -> Response:
    return _static("widget.js")


@pages.get("/widget.css")
async def widget_css() -> Response:
    return _static("widget.css")


@pages.get("/assets/{name}")
async def widget_asset(name: str) -> Response:
    """Anything else the widget ships in ``chat/static`` (icons, sounds)."""
    return _static(name)


@pages.get("/demo")
async def demo(request: Request) -> Response:
    """A page of a pretend company's site with the widget on it (anyone may open it, as a
    site's visitors would; what the widget may do is up to the chat's settings)."""
    settings = settings_of(request)
    if not (HERE / "templates" / "chat_demo.html").is_file():
        return chat_error(
            Problem("The chat demo page is not installed.", status=404, code="not_found")
        )
    response = templates.TemplateResponse(request, "chat_demo.html", demo_context(settings))
    response.headers.update(DEMO_HEADERS)
    return response


# The demo page is served from findesk's own origin (the inbox's): a strict policy, as strict as
# the one the widget's browser tests hold a company's site to. Avatars may come from elsewhere.
DEMO_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data: https:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def demo_context(settings: Settings) -> dict[str, Any]:
    """What the demo page's template gets: the widget's URLs and, when signed identities are
    on, a demo visitor signed as the site's backend would sign one."""
    base = settings.base_url
    context: dict[str, Any] = {
        "base_url": base,
        "widget_js_url": f"{base}/chat/widget.js",
        "widget_css_url": f"{base}/chat/widget.css",
        "config": service.config(settings),
        "demo_user": None,
    }
    secret = settings.chat_identity_secret
    if secret is not None:
        user_id = "demo-42"
        context["demo_user"] = {
            "user_id": user_id,
            "user_hash": service.user_hash(secret.get_secret_value(), user_id),
            "name": "Ada Lovelace",
            "email": "ada@example.com",
        }
    return context


# --- CORS for the widget API ---------------------------------------------------------------------

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID"


def _same_origin(scope: Scope, origin: str) -> bool:
    """The request comes from a page of findesk itself, by whatever name the browser reached it
    (``localhost`` for ``127.0.0.1``): a browser sets both Origin and Host, and a page of any
    other site cannot make them agree."""
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    _, _, netloc = origin.partition("://")
    return host is not None and netloc.lower() == host.lower()


class ChatCors:
    """CORS for ``/chat/v1``: a request from an origin that is not allowed is refused (403, no
    CORS headers); an allowed one is answered with its origin (never ``*``). No credentials
    (cookies) are ever allowed: the token travels in a header."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.origins = service.allowed_origins(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
        if origin is None:  # not a cross-origin browser call (a server, a test, the same page)
            await self.app(scope, receive, send)
            return
        if origin.rstrip("/") not in self.origins and not _same_origin(scope, origin):
            refused = chat_error(
                Problem("This site may not use the chat.", status=403, code="origin_not_allowed")
            )
            refused.headers["Vary"] = "Origin"
            await refused(scope, receive, send)
            return
        cors = {
            "Access-Control-Allow-Origin": origin,
            "Vary": "Origin",
        }
        if scope["method"] == "OPTIONS":
            preflight = Response(
                status_code=204,
                headers={
                    **cors,
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
            await preflight(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend((k.lower().encode(), v.encode()) for k, v in cors.items())
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)
