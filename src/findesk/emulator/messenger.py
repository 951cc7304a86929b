"""The Messenger: the page end users talk to Fin on, served by the emulator as Intercom serves
its Messenger.

A visitor gives a name and an email once and gets a cookie (a random token, stored hashed). They
start conversations (spec 7.1: create the user, then the conversation with the first message),
write in them (7.2), ask for a person, and see Fin's and the human agents' public replies and the
typing indicator live, over server-sent events. Everything shown comes from the transcript store,
which the sync engine fills from the helpdesk; bodies are sanitised again before they are sent.

JSON requests only: a cross-site form cannot send ``application/json`` without a CORS preflight,
which this server never grants, so the cookie cannot be ridden (and the cookie is SameSite).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, Response

from findesk.emulator.sync import SyncEngine
from findesk.emulator.transcripts import TranscriptStore, Visitor
from findesk.kit.errors import Problem
from findesk.kit.html import sanitize
from findesk.kit.http import load_json
from findesk.kit.streams import (
    RETRY_AFTER_SECONDS,
    SlotStreamingResponse,
    StreamSlots,
    evicted_message,
)

log = logging.getLogger("findesk.emulator.messenger")

STATIC = Path(__file__).parent / "static"
COOKIE = "fin_messenger"
ASK_FOR_A_PERSON = "I'd like to talk to a person, please."
MAX_TEXT = 10_000
STREAM_TICK = 0.2  # how often the stream looks at this process's own state (no I/O)
HEARTBEAT = 15.0
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Attachments shown inline as pictures; anything else (SVG included) is a link.
IMAGE_TYPES = {"png", "jpg", "jpeg", "gif", "webp", "avif"}


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def security_headers(helpdesk_origin: str | None = None) -> dict[str, str]:
    """Pictures from ``https:`` anywhere (a reply's body may show one), and from the helpdesk
    itself, which may serve its attachments over plain http on a private network."""
    images = " ".join(filter(None, ["'self'", helpdesk_origin, "https:", "data:"]))
    return {
        "Content-Security-Policy": f"default-src 'self'; img-src {images}; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def safe_url(value: Any) -> str | None:
    """An absolute http(s) URL with nothing a browser would read otherwise (no spaces or
    control characters, no credentials), else None: never a ``javascript:`` link."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return value


def initials(name: str) -> str:
    letters = [word[0] for word in name.split() if word[:1].isalnum()]
    return "".join(letters[:1] + letters[1:][-1:]).upper() or "?"


class AgentNames:
    """The names end users see for the helpdesk's agents (``alias``, else ``name``, from Get
    agents) and their photos, fetched again for an unknown id."""

    def __init__(self, fetch: Callable[[], list[dict[str, Any]] | None]) -> None:
        self._fetch = fetch
        self._agents: dict[str, tuple[str, str | None]] = {}
        self._lock = threading.Lock()

    def profile(self, agent_id: str) -> tuple[str, str | None] | None:
        """(shown name, photo URL or None), or None for an agent the helpdesk does not list."""
        with self._lock:
            if agent_id not in self._agents:
                for agent in self._fetch() or []:
                    shown = agent.get("alias") or agent.get("name") or "Support"
                    photo = safe_url(agent.get("photo_url"))
                    self._agents[str(agent["id"])] = (str(shown), photo)
            return self._agents.get(agent_id)

    def name(self, agent_id: str) -> str | None:
        profile = self.profile(agent_id)
        return profile[0] if profile is not None else None


def text_to_html(text: str) -> str:
    """What the visitor typed, as the contract's HTML: paragraphs, line breaks, nothing else."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(html.escape(line) for line in p.strip().split("\n")) + "</p>"
        for p in paragraphs
    )


def create_messenger(
    engine: SyncEngine,
    store: TranscriptStore,
    typing: Any,
    names: AgentNames,
    *,
    streams: StreamSlots,
    secure_cookies: bool = False,
    helpdesk_origin: str | None = None,
) -> APIRouter:
    """``helpdesk_origin`` (e.g. ``http://127.0.0.1:8080``): where the helpdesk serves its
    attachments; the page may show pictures from there even over plain http."""
    router = APIRouter(prefix="/messenger")
    page_headers = security_headers(helpdesk_origin)

    def may_show(url: str) -> bool:
        """Whether the page's CSP lets it show a picture from ``url``."""
        return url.lower().startswith("https://") or origin_of(url) == helpdesk_origin

    def attachments_of(message: dict[str, Any]) -> list[dict[str, Any]]:
        shown = []
        for attachment in message.get("attachments") or []:
            if not isinstance(attachment, dict):
                continue
            url = safe_url(attachment.get("url"))
            if url is None:
                continue
            filename = str(attachment.get("filename") or "").strip()
            path_name = urlsplit(url).path.rsplit("/", 1)[-1]
            filetype = str(attachment.get("filetype") or "").strip().lower().lstrip(".")
            if not filetype and "." in (filename or path_name):
                filetype = (filename or path_name).rsplit(".", 1)[-1].lower()
            shown.append(
                {
                    "url": url,
                    "name": filename or path_name or "Attachment",
                    "filetype": filetype[:16] or None,
                    "image": filetype in IMAGE_TYPES and may_show(url),
                }
            )
        return shown

    def problem(status: int, detail: str) -> JSONResponse:
        return JSONResponse({"error": detail}, status_code=status, headers=page_headers)

    def visitor_of(request: Request) -> Visitor | None:
        token = request.cookies.get(COOKIE)
        visitor = store.visitor_by_token(token) if token else None
        if visitor is None and request.url.path != "/messenger/api/visitor":
            # Which it was tells a browser that sent no cookie from a store that lost a visitor
            # (a rare refusal right after a visitor was created is still unexplained).
            log.warning(
                "messenger %s %s: no visitor (%s)",
                request.method,
                request.url.path,
                "unknown cookie"
                if token
                else f"no cookie; cookies sent: {sorted(request.cookies)}",
            )
        return visitor

    async def json_body(request: Request) -> dict[str, Any] | JSONResponse:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return problem(415, "Send JSON (Content-Type: application/json).")
        try:
            body = load_json(await request.body())
        except Problem as exc:
            return problem(exc.status, exc.detail)
        return body if isinstance(body, dict) else problem(400, "Send a JSON object.")

    def message_text(body: dict[str, Any]) -> str | JSONResponse:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return problem(422, "Write a message first.")
        if len(text) > MAX_TEXT:
            return problem(422, f"Messages are at most {MAX_TEXT} characters.")
        return text

    def view(message: dict[str, Any]) -> dict[str, Any]:
        author = message.get("author") or {}
        author_id = str(author.get("id"))
        photo: str | None = None
        if author.get("user_type") == "end_user":
            who, name = "you", "You"
        elif author_id == engine.fin_agent_id:
            who, name = "fin", "Fin"
        else:
            profile = names.profile(author_id)
            who, name = "agent", profile[0] if profile is not None else "Support"
            if profile is not None and profile[1] is not None and may_show(profile[1]):
                photo = profile[1]
        return {
            "id": str(message["id"]),
            "from": who,
            "name": name,
            "initials": initials(name),
            "photo_url": photo,
            "html": sanitize(str(message.get("body") or "")),
            "attachments": attachments_of(message),
            "created_at": message.get("created_at"),
        }

    def conversation_view(conversation_id: str) -> dict[str, Any]:
        state = store.state(conversation_id)
        typing_agent = typing.current(conversation_id)
        return {
            "id": state.id,
            "owner": state.owner,
            "status": state.status,
            "messages": [view(m) for m in state.messages],
            "typing": typing_agent["name"] if typing_agent else None,
        }

    @router.get("", include_in_schema=False)
    def page() -> Response:
        return FileResponse(STATIC / "messenger.html", headers=page_headers)

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in ("messenger.js", "messenger.css", "favicon.svg"):
            return problem(404, "Not found.")
        return FileResponse(STATIC / name, headers=page_headers)

    @router.get("/api/visitor")
    def who_am_i(request: Request) -> Response:
        """Who this browser is: 204 when nobody yet. Not a 401: the page asks on every load,
        and a first visit is not an error (nor one for the browser's console)."""
        visitor = visitor_of(request)
        if visitor is None:
            return Response(status_code=204, headers=page_headers)
        return JSONResponse({"name": visitor.name, "email": visitor.email}, headers=page_headers)

    @router.post("/api/visitor")
    async def introduce(request: Request) -> Response:
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        name, email = body.get("name"), body.get("email")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            return problem(422, "Your name is needed (at most 255 characters).")
        if not isinstance(email, str) or not _EMAIL.match(email.strip()) or len(email) > 255:
            return problem(422, "A valid email address is needed.")
        visitor, token = store.new_visitor(" ".join(name.split()), email.strip())
        response = JSONResponse(
            {"name": visitor.name, "email": visitor.email},
            status_code=201,
            headers=page_headers,
        )
        response.set_cookie(
            COOKIE,
            token,
            max_age=180 * 24 * 3600,
            path="/messenger",
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
        )
        return response

    @router.get("/api/conversations")
    def conversations(request: Request) -> Response:
        visitor = visitor_of(request)
        if visitor is None:
            return problem(401, "Say who you are first.")
        listing = []
        for state in store.conversations_of(visitor):
            first = state.messages[0] if state.messages else {}
            last = view(state.messages[-1]) if state.messages else None
            listing.append(
                {
                    "id": state.id,
                    "owner": state.owner,
                    "status": state.status,
                    "started_at": first.get("created_at"),
                    "last": last,
                }
            )
        return JSONResponse(listing, headers=page_headers)

    @router.post("/api/conversations")
    async def start(request: Request) -> Response:
        visitor = visitor_of(request)
        if visitor is None:
            return problem(401, "Say who you are first.")
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        text = message_text(body)
        if isinstance(text, JSONResponse):
            return text
        user: dict[str, Any] = (
            {"user_id": visitor.user_id}
            if visitor.user_id
            else {"object_id": visitor.object_id, "name": visitor.name, "email": visitor.email}
        )
        result = await run_in_threadpool(engine.start_conversation, user, text_to_html(text))
        if not result.ok or result.conversation_id is None:
            return problem(502, f"Fin could not reach the helpdesk: {result.error}")
        user_id = store.seen(result.conversation_id).user_id or ""
        store.claim(result.conversation_id, visitor, user_id)
        return JSONResponse(
            conversation_view(result.conversation_id), status_code=201, headers=page_headers
        )

    @router.get("/api/conversations/{conversation_id}")
    def conversation(request: Request, conversation_id: str) -> Response:
        visitor = visitor_of(request)
        if visitor is None:
            return problem(401, "Say who you are first.")
        if not store.owns(visitor, conversation_id):
            return problem(404, "No such conversation.")
        return JSONResponse(conversation_view(conversation_id), headers=page_headers)

    @router.post("/api/conversations/{conversation_id}/messages")
    async def say(request: Request, conversation_id: str) -> Response:
        visitor = visitor_of(request)
        if visitor is None:
            return problem(401, "Say who you are first.")
        if not store.owns(visitor, conversation_id):
            return problem(404, "No such conversation.")
        body = await json_body(request)
        if isinstance(body, JSONResponse):
            return body
        text = ASK_FOR_A_PERSON if body.get("ask_for_a_person") is True else message_text(body)
        if isinstance(text, JSONResponse):
            return text
        result = await run_in_threadpool(engine.user_says, conversation_id, text_to_html(text))
        if not result.ok:
            return problem(502, f"Fin could not reach the helpdesk: {result.error}")
        return JSONResponse(conversation_view(conversation_id), headers=page_headers)

    @router.get("/api/conversations/{conversation_id}/stream")
    async def stream(request: Request, conversation_id: str) -> Response:
        """Server-sent events: ``conversation`` (the whole view) whenever it changes, including
        the typing indicator appearing or going."""
        visitor = visitor_of(request)
        if visitor is None:
            return problem(401, "Say who you are first.")
        if not store.owns(visitor, conversation_id):
            return problem(404, "No such conversation.")
        # Bounded per visitor (a new stream ends the oldest) and in all (see kit.streams).
        slot = streams.open(f"visitor:{visitor.id}")
        if slot is None:
            busy = problem(503, "Too many live connections; try again shortly.")
            busy.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return busy

        async def events() -> AsyncIterator[str | bytes]:
            last: tuple[int, str | None] | None = None
            quiet = 0.0
            while not await request.is_disconnected():
                if slot.evicted:  # a newer stream of this visitor took its place
                    yield evicted_message()
                    return
                typing_agent = typing.current(conversation_id)
                now = (store.version(conversation_id), typing_agent and typing_agent["id"])
                if now != last:
                    last = now
                    quiet = 0.0
                    data = await run_in_threadpool(conversation_view, conversation_id)
                    yield f"event: conversation\ndata: {json.dumps(data)}\n\n"
                elif quiet >= HEARTBEAT:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(STREAM_TICK)
                quiet += STREAM_TICK

        return SlotStreamingResponse(
            streams,
            slot,
            events(),
            headers={**page_headers, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router
