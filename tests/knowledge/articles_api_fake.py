"""The one stand-in for Intercom's Articles API (spec 8) in findesk's tests, until the
emulator's own ``/articles`` is merged: ``POST/GET/PUT/DELETE /articles`` in Intercom's shapes,
added to the AI Content API emulator's app, so that both phases of the publisher talk to one
base URL with one token (the settings ``kb_settings`` gives), as they do to Intercom.

Swapping it for the emulator's (``findesk.emulator.articles_api``, on main since) is one line in
``Intercom.__init__``: drop ``install_articles(app)`` and make the app with
``create_content_api(..., articles={"teammate_ids": (991_234,)})`` (the tests' author id). The
publisher's tests were run that way once, against main's emulator, and passed.

Every request is recorded (method, path, status, JSON body) and chosen ones can be answered
with an error first (``fail``), 429s with an ``X-RateLimit-Reset``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.content_api_server import TOKEN, ServedApp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from findesk.emulator.content_api import create_content_api

LOCALES = set(
    (
        "ar bg bs ca cs da de el en es et fi fr he hr hu id it ja ko lt lv mn nb nl pl pt ro "
        "ru sl sr sv tr vi pt-BR zh-CN zh-TW"
    ).split()
)


@dataclass
class Hit:
    method: str
    path: str
    status: int
    body: Any


@dataclass
class Fault:
    status: int
    method: str
    path: str
    times: int
    reset_in: float | None = None  # for 429: X-RateLimit-Reset this far ahead


@dataclass
class Traffic:
    hits: list[Hit] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        status: int,
        *,
        method: str = "POST",
        path: str = "/articles",
        times: int = 1,
        reset_in: float | None = None,
    ) -> None:
        with self.lock:
            self.faults.append(Fault(status, method, path, times, reset_in))

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def since(self, mark: int = 0, prefix: str = "") -> list[Hit]:
        with self.lock:
            return [h for h in self.hits[mark:] if h.path.startswith(prefix)]

    def mark(self) -> int:
        with self.lock:
            return len(self.hits)


class Recorder:
    """ASGI middleware in front of everything: records, and answers planned faults."""

    def __init__(self, app: Any, traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        fault = self.traffic.take(method, path)
        if fault is not None:
            payload = {
                "type": "error.list",
                "request_id": "fake",
                "errors": [{"code": "injected", "message": f"injected {fault.status}"}],
            }
            headers = [(b"content-type", b"application/json")]
            if fault.reset_in is not None:
                reset = str(time.time() + fault.reset_in).encode()
                headers.append((b"x-ratelimit-reset", reset))
            await send({"type": "http.response.start", "status": fault.status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
            with self.traffic.lock:
                self.traffic.hits.append(Hit(method, path, fault.status, body))
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                with self.traffic.lock:
                    self.traffic.hits.append(Hit(method, path, message["status"], body))
            await send(message)

        await self.app(scope, replay, capture)


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    error = {"code": code, "message": message, "field": field}
    return JSONResponse(
        {"type": "error.list", "request_id": "fake", "errors": [error]}, status_code=status
    )


def install_articles(app: FastAPI) -> dict[str, dict[str, Any]]:
    """Adds the Articles API to ``app`` (behind its token check); returns its store."""
    store: dict[str, dict[str, Any]] = {}
    numbers = itertools.count(7_000_001)

    def problem(body: Any) -> JSONResponse | None:
        if not isinstance(body, dict):
            return _error(400, "bad_request", "body must be a JSON object")
        content = body.get("translated_content") or {}
        for locale, value in content.items():
            if locale == "type":
                continue
            if locale not in LOCALES:
                return _error(400, "parameter_invalid", f"locale {locale} is not supported")
            if value.get("type") != "article_content" or not value.get("title"):
                return _error(400, "parameter_invalid", f"{locale} is not an article_content")
        if not body.get("title"):
            return _error(400, "parameter_not_found", "title is required", "title")
        if not isinstance(body.get("author_id"), int):
            return _error(
                400,
                "parameter_not_found",
                "author_id must be in the main body or default locale translated_content object",
                "author_id",
            )
        return None

    def shaped(article_id: str, body: dict[str, Any], created: int) -> dict[str, Any]:
        return {
            "type": "article",
            "id": article_id,
            "workspace_id": "fake",
            "title": body["title"],
            "description": body.get("description"),
            "body": body.get("body"),
            "author_id": body["author_id"],
            "state": body.get("state", "draft"),
            "created_at": created,
            "updated_at": int(time.time()),
            "url": None,
            "parent_id": None,
            "parent_type": None,
            "default_locale": "en",
            "translated_content": {
                "type": "article_translated_content",
                **(body.get("translated_content") or {}),
            },
            "statistics": None,
        }

    @app.post("/articles")
    async def create(request: Request) -> Response:
        body = await request.json()
        refused = problem(body)
        if refused is not None:
            return refused
        article_id = str(next(numbers))
        store[article_id] = shaped(article_id, body, int(time.time()))
        return JSONResponse(store[article_id])

    @app.get("/articles/{article_id}")
    async def retrieve(article_id: str) -> Response:
        if article_id not in store:
            return _error(404, "not_found", "Resource Not Found")
        return JSONResponse(store[article_id])

    @app.put("/articles/{article_id}")
    async def update(article_id: str, request: Request) -> Response:
        if article_id not in store:
            return _error(404, "not_found", "Resource Not Found")
        body = await request.json()
        refused = problem(body)
        if refused is not None:
            return refused
        store[article_id] = shaped(article_id, body, store[article_id]["created_at"])
        return JSONResponse(store[article_id])

    @app.delete("/articles/{article_id}")
    async def delete(article_id: str) -> Response:
        if store.pop(article_id, None) is None:
            return _error(404, "not_found", "Resource Not Found")
        return JSONResponse({"id": article_id, "object": "article", "deleted": True})

    return store


class Intercom:
    """The AI Content API emulator plus the Articles API, on one loopback base URL."""

    def __init__(self, db_path: Path) -> None:
        app = create_content_api(f"sqlite:///{db_path}", [TOKEN], 100_000, 10.0)
        self.articles = install_articles(app)  # the one line to drop for the emulator's own
        self.traffic = Traffic()
        app.add_middleware(Recorder, traffic=self.traffic)
        self.served = ServedApp(app)
        self.base_url = self.served.base_url
        self.token = TOKEN

    def external_ids(self) -> list[str]:
        return [p.external_id for p in self.served.store.list_pages(0, 1_000_000)[0]]

    def stop(self) -> None:
        self.served.stop()
