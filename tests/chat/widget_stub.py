"""A stand-in for findesk's chat API (`/chat/v1`, as `chat_design.md` fixes it), served on
loopback, for the widget's browser tests: the test plays Fin and the team by pushing messages and
events, and reads back what the widget sent. It serves the real `widget.js` and `widget.css`, and
sanitises message bodies with findesk's own sanitiser, as the real server does.

The site that embeds the widget is another origin: `SitePage` serves a page with the snippet and a
strict CSP that names only this server's origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import itertools
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile

from findesk.kit.html import sanitize

STATIC = Path(__file__).resolve().parents[2] / "src" / "findesk" / "chat" / "static"
IDENTITY_SECRET = "widget-test-identity-secret"


def user_hash(user_id: str, secret: str = IDENTITY_SECRET) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Visitor:
    id: str
    name: str | None
    email: str | None
    anonymous: bool
    object_id: str


@dataclass
class Event:
    id: int
    name: str
    data: dict[str, Any]
    user_id: str


@dataclass
class StubState:
    config: dict[str, Any]
    site_origin: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, Visitor] = field(default_factory=dict)
    visitors: dict[str, Visitor] = field(default_factory=dict)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    stream_connects: list[tuple[str, str | None]] = field(default_factory=list)
    refused_connects: int = 0
    delivered: dict[str, int] = field(default_factory=dict)  # visitor id: last event id sent
    generation: int = 0
    refuse_streams: bool = False
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class Port:
    """A loopback port held (bound) from the moment it is picked until a server takes it, so no
    other server started meanwhile can pick it too."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.number = int(self.socket.getsockname()[1])


class Served:
    """An ASGI app served by uvicorn on its held port, in a thread of the test process."""

    def __init__(self, app: Any, port: Port, lifespan: str = "off") -> None:
        self.port = port.number
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port.number,
            log_level="warning",
            lifespan=lifespan,  # type: ignore[arg-type]
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [port.socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_stub(state: StubState, base_url: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[state.site_origin],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        max_age=600,
    )

    def visitor_of(request: Request) -> Visitor | None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with state.lock:
            return state.tokens.get(token)

    def record(request: Request, body: Any = None) -> None:
        with state.lock:
            state.calls.append((request.method, request.url.path, body))

    def new_token(visitor: Visitor) -> dict[str, Any]:
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = visitor
        return {
            "token": token,
            "expires_at": "2099-01-01T00:00:00+00:00",
            "user": {
                "id": visitor.id,
                "name": visitor.name,
                "email": visitor.email,
                "anonymous": visitor.anonymous,
            },
        }

    @app.get("/chat/widget.js")
    def widget_js() -> FileResponse:
        return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    @app.get("/chat/widget.css")
    def widget_css() -> FileResponse:
        return FileResponse(STATIC / "widget.css", media_type="text/css")

    @app.get("/files/{key}/{name}")
    def file(key: str, name: str) -> Response:
        with state.lock:
            found = state.files.get(key)
        if found is None:
            return Response(status_code=404)
        return Response(found[2], media_type=found[1])

    @app.get("/chat/v1/config")
    def config() -> dict[str, Any]:
        return state.config

    @app.post("/chat/v1/session", status_code=201, response_model=None)
    async def session(request: Request) -> dict[str, Any] | JSONResponse:
        body = await request.json()
        record(request, body)
        if "token" in body:
            with state.lock:
                visitor = state.tokens.get(body["token"])
            if visitor is None:
                return error(401, "invalid_token", "This session has expired.")
            return new_token(visitor)
        user_id = body.get("user_id")
        if user_id is not None:
            given = str(body.get("user_hash") or "")
            if not hmac.compare_digest(given, user_hash(str(user_id))):
                return error(401, "invalid_identity", "The user's identity could not be verified.")
            object_id = f"chat-user:{user_id}"
        elif not state.config["anonymous_allowed"]:
            return error(401, "identity_required", "Sign in to chat.")
        else:
            object_id = f"chat-visitor:{secrets.token_hex(8)}"
        with state.lock:
            visitor = state.visitors.get(object_id)
            if visitor is None:
                visitor = Visitor(
                    id=f"usr_{secrets.token_hex(6)}",
                    name=body.get("name"),
                    email=body.get("email"),
                    anonymous=user_id is None,
                    object_id=object_id,
                )
                state.visitors[object_id] = visitor
        return new_token(visitor)

    def summary(cid: str) -> dict[str, Any]:
        conversation = state.conversations[cid]
        last = state.messages[cid][-1] if state.messages[cid] else None
        return {
            **conversation,
            "last_message": {
                "text": html.unescape(last["body_html"].replace("<p>", "").replace("</p>", "")),
                "author_type": last["author"]["type"],
            }
            if last
            else None,
        }

    @app.get("/chat/v1/conversations", response_model=None)
    def conversations(request: Request) -> list[dict[str, Any]] | JSONResponse:
        visitor = visitor_of(request)
        if visitor is None:
            return error(401, "unauthorized", "Sign in again.")
        with state.lock:
            mine = [c for c in state.conversations.values() if c["user_id"] == visitor.id]
            mine.sort(key=lambda c: c["updated_at"], reverse=True)
            return [summary(c["id"]) for c in mine]

    def own(request: Request, cid: str) -> Visitor | JSONResponse:
        visitor = visitor_of(request)
        if visitor is None:
            return error(401, "unauthorized", "Sign in again.")
        with state.lock:
            conversation = state.conversations.get(cid)
        if conversation is None or conversation["user_id"] != visitor.id:
            return error(404, "not_found", "No such conversation.")
        return visitor

    def visitor_message(visitor: Visitor, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        text = str(body.get("body") or "")
        keys = body.get("attachments") or []
        with state.lock:
            attachments = [
                {
                    "name": state.files[k][0],
                    "url": f"{base_url}/files/{k}/{state.files[k][0]}",
                    "content_type": state.files[k][1],
                    "size": len(state.files[k][2]),
                }
                for k in keys
                if k in state.files
            ]
        message = {
            "id": f"msg_{next(state.ids)}",
            "conversation_id": cid,
            "author": {"type": "user", "name": visitor.name or "You", "avatar_url": None},
            "body_html": f"<p>{html.escape(text)}</p>" if text else "",
            "created_at": now(),
            "attachments": attachments,
            "quick_replies": [],
        }
        with state.lock:
            state.messages[cid].append(message)
            state.conversations[cid]["updated_at"] = message["created_at"]
        return message

    @app.post("/chat/v1/conversations", status_code=201, response_model=None)
    async def start(request: Request) -> dict[str, Any] | JSONResponse:
        visitor = visitor_of(request)
        if visitor is None:
            return error(401, "unauthorized", "Sign in again.")
        body = await request.json()
        record(request, body)
        cid = f"conv_{secrets.token_hex(5)}"
        with state.lock:
            state.conversations[cid] = {
                "id": cid,
                "user_id": visitor.id,
                "title": str(body.get("body") or "")[:60],
                "status": "open",
                "updated_at": now(),
                "waiting_for_human": False,
                "fin_state": "thinking",
                "unread": 0,
            }
            state.messages[cid] = []
        message = visitor_message(visitor, cid, body)
        with state.lock:
            conversation = summary(cid)
        return {"conversation": conversation, "message": message}

    @app.get("/chat/v1/conversations/{cid}/messages", response_model=None)
    def messages(
        request: Request, cid: str, after_id: str | None = None
    ) -> list[dict[str, Any]] | JSONResponse:
        visitor = own(request, cid)
        if isinstance(visitor, JSONResponse):
            return visitor
        record(request, {"after_id": after_id})
        with state.lock:
            found = list(state.messages[cid])
        if after_id:
            ids = [m["id"] for m in found]
            found = found[ids.index(after_id) + 1 :] if after_id in ids else found
        return found

    @app.post("/chat/v1/conversations/{cid}/messages", status_code=201, response_model=None)
    async def post_message(request: Request, cid: str) -> dict[str, Any] | JSONResponse:
        visitor = own(request, cid)
        if isinstance(visitor, JSONResponse):
            return visitor
        body = await request.json()
        record(request, body)
        return visitor_message(visitor, cid, body)

    @app.post("/chat/v1/attachments", status_code=201, response_model=None)
    async def attachments(request: Request) -> dict[str, Any] | JSONResponse:
        if visitor_of(request) is None:
            return error(401, "unauthorized", "Sign in again.")
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return error(422, "invalid", "No file.")
        data = await upload.read()
        key = secrets.token_hex(8)
        name = upload.filename or "file"
        content_type = upload.content_type or "application/octet-stream"
        with state.lock:
            state.files[key] = (name, content_type, data)
        record(request, {"name": name})
        return {
            "key": key,
            "name": name,
            "content_type": content_type,
            "size": len(data),
            "url": f"{base_url}/files/{key}/{name}",
        }

    @app.post("/chat/v1/conversations/{cid}/typing", status_code=202, response_model=None)
    def typing(request: Request, cid: str) -> Response:
        visitor = own(request, cid)
        if isinstance(visitor, JSONResponse):
            return visitor
        record(request)
        return Response(status_code=202)

    @app.post("/chat/v1/conversations/{cid}/read", status_code=204, response_model=None)
    def read(request: Request, cid: str) -> Response:
        visitor = own(request, cid)
        if isinstance(visitor, JSONResponse):
            return visitor
        record(request)
        with state.lock:
            state.conversations[cid]["unread"] = 0
        return Response(status_code=204)

    @app.post("/chat/v1/conversations/{cid}/rating", status_code=201, response_model=None)
    async def rating(request: Request, cid: str) -> Response:
        visitor = own(request, cid)
        if isinstance(visitor, JSONResponse):
            return visitor
        body = await request.json()
        record(request, body)
        if body.get("rating") not in ("terrible", "bad", "ok", "good", "amazing"):
            return error(422, "invalid", "Pick a rating.")
        return Response(status_code=201)

    @app.get("/chat/v1/events", response_model=None)
    async def events(request: Request) -> StreamingResponse | JSONResponse:
        visitor = visitor_of(request)
        if visitor is None:
            return error(401, "unauthorized", "Sign in again.")
        resume = request.headers.get("last-event-id") or request.query_params.get("after")
        with state.lock:
            if state.refuse_streams:
                state.refused_connects += 1
                return error(503, "unavailable", "Try again later.")
            state.stream_connects.append((visitor.id, resume))
            generation = state.generation
            after = int(resume) if resume and resume.isdigit() else len(state.events)

        async def stream() -> Any:
            nonlocal after
            yield ": hello\n\n"
            while True:
                with state.lock:
                    if state.generation != generation:
                        return
                    fresh = [e for e in state.events[after:] if e.user_id == visitor.id]
                    after = len(state.events)
                for event in fresh:
                    yield f"id: {event.id}\nevent: {event.name}\ndata: {_json(event.data)}\n\n"
                    with state.lock:
                        state.delivered[visitor.id] = event.id
                await asyncio.sleep(0.03)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return app


def _json(data: Any) -> str:
    return json.dumps(data)


class ChatStub:
    """The stub served on loopback, with what a test does as Fin or the team."""

    def __init__(self, site_origin: str, **config: Any) -> None:
        port = Port()
        self.base_url = f"http://127.0.0.1:{port.number}"
        self.state = StubState(
            config={
                "channel": "fin_agent_api",
                "title": "Acme Support",
                "greeting": "Ask us anything. Fin answers right away.",
                "accent_color": "#1f5eff",
                "anonymous_allowed": True,
                "identity_required": False,
                **config,
            },
            site_origin=site_origin,
        )
        self.served = Served(create_stub(self.state, self.base_url), port)

    def stop(self) -> None:
        self.served.stop()

    # --- reading what the widget did -----------------------------------------------------------

    def calls(self, method: str, path_end: str) -> list[Any]:
        with self.state.lock:
            return [b for m, p, b in self.state.calls if m == method and p.endswith(path_end)]

    def conversation_ids(self) -> list[str]:
        with self.state.lock:
            return list(self.state.conversations)

    def visitor_of(self, cid: str) -> str:
        with self.state.lock:
            return str(self.state.conversations[cid]["user_id"])

    # --- playing Fin and the team --------------------------------------------------------------

    def emit(self, cid: str, name: str, data: dict[str, Any]) -> int:
        with self.state.lock:
            user = self.state.conversations[cid]["user_id"]
            event = Event(id=len(self.state.events) + 1, name=name, data=data, user_id=user)
            self.state.events.append(event)
            return event.id

    def say(
        self,
        cid: str,
        body_html: str,
        *,
        author: str = "fin",
        name: str = "Fin",
        quick_replies: list[dict[str, str]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        raw: bool = False,
    ) -> dict[str, Any]:
        """A message from Fin or an agent, sanitised as findesk does (`raw`: as given)."""
        message = {
            "id": f"msg_{next(self.state.ids)}",
            "conversation_id": cid,
            "author": {"type": author, "name": name, "avatar_url": None},
            "body_html": body_html if raw else sanitize(body_html),
            "created_at": now(),
            "attachments": attachments or [],
            "quick_replies": quick_replies or [],
        }
        with self.state.lock:
            self.state.messages[cid].append(message)
            self.state.conversations[cid]["updated_at"] = message["created_at"]
        self.emit(cid, "message", message)
        if author == "fin":  # Fin has answered: it waits for the visitor now
            self.set_state(cid, fin_state="awaiting_user_reply")
        return message

    def set_state(self, cid: str, **changes: Any) -> None:
        with self.state.lock:
            conversation = self.state.conversations[cid]
            conversation.update(changes)
            data = {k: conversation[k] for k in ("id", "status", "fin_state", "waiting_for_human")}
        self.emit(cid, "conversation", data)

    def drop_streams(self, refuse: bool) -> None:
        """End every open event stream; with `refuse`, turn reconnections away until `accept`."""
        with self.state.lock:
            self.state.refuse_streams = refuse
            self.state.generation += 1

    def accept_streams(self) -> None:
        with self.state.lock:
            self.state.refuse_streams = False


CALM_CSS = """
body { margin: 0; font: 16px/1.5 Georgia, serif; color: #222; background: #fbf7f0; }
main { max-width: 640px; margin: 0 auto; padding: 32px 24px; }
button { font: inherit; padding: 8px 16px; background: #16324f; color: #fff; border: 0; }
"""
SITE_CSS = """
/* A site's rules that would spoil a widget that did not keep to its shadow root. */
body { font-family: "Comic Sans MS", cursive; text-transform: uppercase; color: #c00; }
button { background: hotpink !important; border: 5px dashed lime; }
p, li, ol { margin: 40px; font-size: 30px; }
"""


class SitePage:
    """The company's site: another origin (``localhost`` rather than ``127.0.0.1``) whose pages
    carry the snippet and a strict CSP naming only findesk's origin."""

    def __init__(self, port: Port, findesk_origin: str, stylesheet: str = SITE_CSS) -> None:
        self.findesk_origin = findesk_origin
        self.csp_violations: list[str] = []
        app = FastAPI()

        @app.get("/site.css")
        def css() -> Response:
            return Response(stylesheet, media_type="text/css")

        @app.post("/csp-report")
        async def report(request: Request) -> Response:
            self.csp_violations.append((await request.body()).decode(errors="replace"))
            return Response(status_code=204)

        @app.get("/")
        def page(request: Request) -> HTMLResponse:
            attributes = ""
            for name in ("user-id", "user-hash", "name", "email"):
                value = request.query_params.get(name.replace("-", "_"))
                if value is not None:
                    attributes += f' data-{name}="{html.escape(value)}"'
            body = (
                "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                "<title>Acme Travel</title><link rel='stylesheet' href='/site.css'>"
                f"<script src='{findesk_origin}/chat/widget.js' defer data-findesk-chat"
                f"{attributes}></script></head><body><main><h1>Acme Travel</h1>"
                "<p>Plan your next trip.</p><button type='button'>Book now</button></main>"
                "</body></html>"
            )
            origin = findesk_origin
            policy = (
                f"default-src 'none'; script-src {origin}; style-src 'self' {origin}; "
                f"connect-src {origin}; img-src {origin}; base-uri 'none'; form-action 'none'; "
                "report-uri /csp-report"
            )
            return HTMLResponse(body, headers={"Content-Security-Policy": policy})

        self.served = Served(app, port)
        self.url = f"http://localhost:{port.number}"

    def stop(self) -> None:
        self.served.stop()
