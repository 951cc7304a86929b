"""An emulation of Intercom's AI Content API (the Fin Content Library), as its own FastAPI app.

Spec section 8 and seeds 003/004 say what the endpoints are; Intercom's published schemas
(API 2.14) give the shapes. Where both are silent this module decides, and says so here:

Requests
    * Auth: ``Authorization: Bearer <token>`` with one of the configured tokens, else 401
      ``unauthorized`` / "Access Token Invalid". Checked first, before anything else.
    * Rate limit: per token, fixed windows aligned to the epoch (``floor(now / window)``), so
      ``X-RateLimit-Reset`` (Unix seconds, rounded up) is when the next window opens. Every
      authenticated response carries ``X-RateLimit-Limit/Remaining/Reset``; over the limit it is
      429 ``rate_limit_exceeded``. Requests refused for the limit do not use up the allowance
      (any other authenticated request does, whatever its outcome). Default 167 per
      10 s (about Intercom's 10,000 a minute).
    * ``Intercom-Version``: optional; absent means ``DEFAULT_VERSION`` (2.14, the version of seed
      003). A value outside ``SUPPORTED_VERSIONS`` is 400 ``intercom_version_invalid``. The
      version does not change behaviour here (this API's shape is the same in 2.10+). The same
      app serves the Data Connectors API (``data_connectors_api``; 2.16 and Preview only).
    * Bodies must be JSON objects (else 400 ``bad_request``). Unknown fields are ignored, as
      Intercom does. Missing required fields are 400 ``parameter_not_found``, present but wrong
      ones 400 ``parameter_invalid``; both name the ``field``.
    * Every response has ``X-Request-Id``; errors carry the same value as ``request_id``.

Content import sources
    ``{"type": "content_import_source", "id": <int>, "url", "sync_behavior", "status",
    "created_at", "updated_at", "last_synced_at"}`` (Unix seconds). ``sync_behavior`` is one of
    ``api``, ``automatic``, ``manual`` (``automated``, the spelling of Intercom's update schema,
    is accepted too and stored as sent); ``status`` ``active`` (default) or ``deactivated``.
    ``url`` must be an absolute http(s) URL. Create and update return 200 with the source.
    Update takes ``url`` and ``sync_behavior`` (both required, as Intercom's schema has it),
    ``status`` optional; as Intercom documents, ``sync_behavior`` cannot change to or from
    ``api`` and the ``url`` can only change on an ``api`` source (else 400
    ``parameter_invalid``). ``last_synced_at`` starts at ``created_at`` and moves whenever one of
    the source's pages is written. ``audience_ids`` is not emulated (ignored). Delete answers
    200 with an empty body (Intercom documents no body) and deletes the source's pages.

External pages
    ``{"type": "external_page", "id": "<string>", "title", "html", "url", "locale": "en",
    "source_id": <int>, "external_id", "ai_agent_availability", "ai_copilot_availability",
    "fin_availability", "created_at", "updated_at", "last_ingested_at"}``. ``fin_availability``
    is the older name of ``ai_agent_availability`` and mirrors it.
    ``POST /ai/external_pages`` creates or updates by (``source_id``, ``external_id``) and
    answers 200 with the page either way (same id on update). Required: ``title`` (non-blank),
    ``html``, ``locale`` (``en`` only), ``source_id`` (an integer), ``external_id`` (a non-empty
    string), and, stricter than Intercom's schema (which marks them optional but says they "will
    not default when updating"), both ``ai_agent_availability`` and ``ai_copilot_availability``
    (booleans): a client that leaves them out would get different results on create and on
    update, so the emulator refuses it. ``url`` is optional (null: Fin does not cite the page);
    when present, an absolute http(s) URL. An unknown ``source_id`` is 404 ``not_found`` with
    ``field: "source_id"``.
    ``PUT /ai/external_pages/{id}`` follows Intercom's update schema: ``title``, ``html``,
    ``url``, ``locale``, ``source_id`` required; ``external_id`` and the availability flags
    optional (unchanged when absent; ``fin_availability`` accepted for ``ai_agent_availability``).
    ``source_id`` must be the page's own source (pages do not move) and a new ``external_id``
    must be free within it (else 400 ``parameter_invalid``).
    ``DELETE`` answers 200 with the page as it was.

Lists
    ``{"type": "list", "data": [...], "total_count": n, "pages": {"type": "pages", "page",
    "per_page", "total_pages"}}``, oldest first, ``?page=`` (from 1) and ``?per_page=``
    (1..150, default 50). Ids in paths that are not integers are 404, like unknown ones.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from findesk.emulator.content_store import (
    ContentStore,
    ExternalIdTaken,
    Page,
    Source,
    SourceNotFound,
)
from findesk.emulator.data_connectors_store import DataConnectorStore
from findesk.kit.errors import Problem
from findesk.kit.http import load_json

DEFAULT_VERSION = "2.14"
SUPPORTED_VERSIONS = frozenset(
    [f"1.{n}" for n in range(5)] + [f"2.{n}" for n in range(17)] + ["Preview", "Unstable"]
)
SYNC_BEHAVIORS = ("api", "automatic", "automated", "manual")
SOURCE_STATUSES = ("active", "deactivated")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 150


class ApiError(Exception):
    """An error answered in Intercom's ``error.list`` shape."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def _not_found(what: str, field: str | None = None) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found", field)


def error_body(request_id: str, code: str, message: str, field: str | None = None) -> Any:
    error: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"type": "error.list", "request_id": request_id, "errors": [error]}


class RateLimiter:
    """``limit`` requests per key in each ``window``-second window aligned to the epoch."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.time) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("rate limit and window must be positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window index, count)

    def hit(self, key: str) -> tuple[bool, int, int]:
        """Counts one request if allowed; returns (allowed, remaining, reset in Unix seconds)."""
        now = self._clock()
        index = math.floor(now / self.window)
        reset = math.ceil((index + 1) * self.window)
        with self._lock:
            current, count = self._windows.get(key, (index, 0))
            if current != index:
                count = 0
            allowed = count < self.limit
            if allowed:
                count += 1
            self._windows[key] = (index, count)
        return allowed, self.limit - count, reset


# --- request validation -----------------------------------------------------------------------


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = load_json(raw) if raw else None
    except Problem:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The request body must be a JSON object")
    return body


def _required(body: dict[str, Any], field: str) -> Any:
    if body.get(field) is None:
        raise ApiError(400, "parameter_not_found", f"{field} is required", field)
    return body[field]


def _string(body: dict[str, Any], field: str, *, blank_ok: bool = True) -> str:
    value = _required(body, field)
    if not isinstance(value, str) or (not blank_ok and not value.strip()):
        raise ApiError(400, "parameter_invalid", f"{field} must be a non-empty string", field)
    return value


def _boolean(body: dict[str, Any], field: str) -> bool:
    value = _required(body, field)
    if not isinstance(value, bool):
        raise ApiError(400, "parameter_invalid", f"{field} must be true or false", field)
    return value


def _integer(body: dict[str, Any], field: str) -> int:
    value = _required(body, field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ApiError(400, "parameter_invalid", f"{field} must be a positive integer", field)
    return value


def _url(body: dict[str, Any], field: str) -> str:
    value = _string(body, field, blank_ok=False)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "parameter_invalid", f"{field} must be an absolute http(s) URL", field)
    return value


def _choice(body: dict[str, Any], field: str, choices: tuple[str, ...]) -> str:
    value = _required(body, field)
    if value not in choices:
        raise ApiError(400, "parameter_invalid", f"{field} must be one of {choices}", field)
    return str(value)


def _locale(body: dict[str, Any]) -> str:
    value = _required(body, "locale")
    if value != "en":
        raise ApiError(400, "parameter_invalid", "locale must be en (English only)", "locale")
    return "en"


def _path_id(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise _not_found(what)
    return int(raw)


def _paging(request: Request) -> tuple[int, int]:
    def number(name: str, default: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
            raise ApiError(
                400, "parameter_invalid", f"{name} must be an integer from 1 to {maximum}", name
            )
        return int(raw)

    return number("page", 1, 10**9), number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)


def _list(data: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {
        "type": "list",
        "data": data,
        "total_count": total,
        "pages": {
            "type": "pages",
            "page": page,
            "per_page": per_page,
            "total_pages": math.ceil(total / per_page),
        },
    }


# --- shapes -----------------------------------------------------------------------------------


def source_json(source: Source) -> dict[str, Any]:
    return {
        "type": "content_import_source",
        "id": source.id,
        "url": source.url,
        "sync_behavior": source.sync_behavior,
        "status": source.status,
        "created_at": source.created_at,
        "updated_at": source.updated_at,
        "last_synced_at": source.last_synced_at,
    }


def page_json(page: Page) -> dict[str, Any]:
    return {
        "type": "external_page",
        "id": str(page.id),
        "title": page.title,
        "html": page.html,
        "url": page.url,
        "locale": page.locale,
        "source_id": page.source_id,
        "external_id": page.external_id,
        "ai_agent_availability": page.ai_agent_availability,
        "ai_copilot_availability": page.ai_copilot_availability,
        "fin_availability": page.ai_agent_availability,
        "created_at": page.created_at,
        "updated_at": page.updated_at,
        "last_ingested_at": page.last_ingested_at,
    }


# --- the app ----------------------------------------------------------------------------------


def store_of(app: FastAPI) -> ContentStore:
    """The store behind an app made by ``create_content_api`` (for the answerer and tests)."""
    store: ContentStore = app.state.content_store
    return store


def create_content_api(
    db_url: str,
    tokens: Iterable[str],
    rate_limit: int = 167,
    window: float = 10.0,
    *,
    clock: Callable[[], float] = time.time,
    articles: dict[str, Any] | None = None,
    object_types: Iterable[str] = (),
) -> FastAPI:
    """The AI Content API emulator, its tables created in ``db_url`` if missing; it serves the
    Articles API (``articles``: keyword arguments of ``articles_api.add_articles_api``), the Data
    Connectors API and the Custom Object Instances API (``object_types``: the custom object
    types Intercom knows) too."""
    accepted = [token.encode() for token in tokens if token]
    if not accepted:
        raise ValueError("the content API emulator needs at least one access token")
    store = ContentStore(db_url, clock=clock)
    limiter = RateLimiter(rate_limit, window, clock=clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.dispose()

    app = FastAPI(
        title="Intercom AI Content API (findesk emulator)",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.content_store = store
    from findesk.emulator.articles_api import add_articles_api  # here: it imports this module

    add_articles_api(app, store.engine, clock=clock, **(articles or {}))

    def token_of(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        candidate = token.encode()
        # Compare against every token, so timing says nothing about which one was close.
        matches = [hmac.compare_digest(candidate, known) for known in accepted]
        return token if any(matches) else None

    @app.middleware("http")
    async def gatekeeper(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = uuid.uuid4().hex
        request.state.request_id = request_id
        token = token_of(request)
        if token is None:
            response: Response = JSONResponse(
                error_body(request_id, "unauthorized", "Access Token Invalid"), status_code=401
            )
        else:
            allowed, remaining, reset = limiter.hit(token)
            version = request.headers.get("intercom-version", DEFAULT_VERSION).strip()
            if not allowed:
                response = JSONResponse(
                    error_body(request_id, "rate_limit_exceeded", "Rate limit exceeded"),
                    status_code=429,
                )
            elif version not in SUPPORTED_VERSIONS:
                response = JSONResponse(
                    error_body(
                        request_id,
                        "intercom_version_invalid",
                        f"Requested version {version!r} is not supported",
                    ),
                    status_code=400,
                )
            else:
                request.state.intercom_version = version
                response = await call_next(request)
            response.headers["X-RateLimit-Limit"] = str(limiter.limit)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
            response.headers["X-RateLimit-Reset"] = str(reset)
        response.headers["X-Request-Id"] = request_id
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse(
            error_body(request.state.request_id, exc.code, exc.message, exc.field),
            status_code=exc.status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return JSONResponse(
            error_body(request.state.request_id, code, str(exc.detail)),
            status_code=exc.status_code,
        )

    from findesk.emulator.data_connectors_api import include_data_connectors  # imports us
    from findesk.emulator.objects_api import ObjectStore, include_objects  # imports us

    include_data_connectors(app, DataConnectorStore(store.engine, clock))
    include_objects(app, ObjectStore(store.engine, clock), object_types)

    # --- content import sources ---------------------------------------------------------------

    @app.get("/ai/content_import_sources")
    def list_sources(request: Request) -> Any:
        page, per_page = _paging(request)
        sources, total = store.list_sources((page - 1) * per_page, per_page)
        return _list([source_json(s) for s in sources], total, page, per_page)

    @app.post("/ai/content_import_sources")
    def create_source(body: dict[str, Any] = Depends(json_object)) -> Any:
        url = _url(body, "url")
        sync_behavior = _choice(body, "sync_behavior", SYNC_BEHAVIORS)
        status = "active"
        if body.get("status") is not None:
            status = _choice(body, "status", SOURCE_STATUSES)
        return source_json(store.create_source(url, sync_behavior, status))

    @app.get("/ai/content_import_sources/{source_id}")
    def get_source(source_id: str) -> Any:
        source = store.get_source(_path_id(source_id, "Content import source"))
        if source is None:
            raise _not_found("Content import source")
        return source_json(source)

    @app.put("/ai/content_import_sources/{source_id}")
    def update_source(source_id: str, body: dict[str, Any] = Depends(json_object)) -> Any:
        current = store.get_source(_path_id(source_id, "Content import source"))
        if current is None:
            raise _not_found("Content import source")
        url = _url(body, "url")
        sync_behavior = _choice(body, "sync_behavior", SYNC_BEHAVIORS)
        status = None
        if body.get("status") is not None:
            status = _choice(body, "status", SOURCE_STATUSES)
        if (sync_behavior == "api") != (current.sync_behavior == "api"):
            raise ApiError(
                400,
                "parameter_invalid",
                "sync_behavior cannot be changed to or from api",
                "sync_behavior",
            )
        if url != current.url and current.sync_behavior != "api":
            raise ApiError(
                400, "parameter_invalid", "url can only be changed on an api source", "url"
            )
        updated = store.update_source(current.id, url, sync_behavior, status)
        if updated is None:  # deleted in between
            raise _not_found("Content import source")
        return source_json(updated)

    @app.delete("/ai/content_import_sources/{source_id}")
    def delete_source(source_id: str) -> Response:
        if not store.delete_source(_path_id(source_id, "Content import source")):
            raise _not_found("Content import source")
        return Response(status_code=200)

    # --- external pages -----------------------------------------------------------------------

    @app.get("/ai/external_pages")
    def list_pages(request: Request) -> Any:
        page, per_page = _paging(request)
        pages, total = store.list_pages((page - 1) * per_page, per_page)
        return _list([page_json(p) for p in pages], total, page, per_page)

    @app.post("/ai/external_pages")
    def upsert_page(body: dict[str, Any] = Depends(json_object)) -> Any:
        title = _string(body, "title", blank_ok=False)
        html = _string(body, "html")
        url = None if body.get("url") is None else _url(body, "url")
        locale = _locale(body)
        source_id = _integer(body, "source_id")
        external_id = _string(body, "external_id", blank_ok=False)
        ai_agent = _boolean(body, "ai_agent_availability")
        ai_copilot = _boolean(body, "ai_copilot_availability")
        try:
            page, _created = store.upsert_page(
                source_id=source_id,
                external_id=external_id,
                title=title,
                html=html,
                url=url,
                locale=locale,
                ai_agent_availability=ai_agent,
                ai_copilot_availability=ai_copilot,
            )
        except SourceNotFound:
            raise _not_found("Content import source", "source_id") from None
        return page_json(page)

    @app.get("/ai/external_pages/{page_id}")
    def get_page(page_id: str) -> Any:
        page = store.get_page(_path_id(page_id, "External page"))
        if page is None:
            raise _not_found("External page")
        return page_json(page)

    @app.put("/ai/external_pages/{page_id}")
    def update_page(page_id: str, body: dict[str, Any] = Depends(json_object)) -> Any:
        current = store.get_page(_path_id(page_id, "External page"))
        if current is None:
            raise _not_found("External page")
        fields: dict[str, Any] = {
            "title": _string(body, "title", blank_ok=False),
            "html": _string(body, "html"),
            "url": _url(body, "url"),
            "locale": _locale(body),
        }
        if _integer(body, "source_id") != current.source_id:
            raise ApiError(
                400, "parameter_invalid", "source_id must be the page's own source", "source_id"
            )
        if body.get("external_id") is not None:
            fields["external_id"] = _string(body, "external_id", blank_ok=False)
        if body.get("ai_agent_availability") is not None:
            fields["ai_agent_availability"] = _boolean(body, "ai_agent_availability")
        elif body.get("fin_availability") is not None:
            fields["ai_agent_availability"] = _boolean(body, "fin_availability")
        if body.get("ai_copilot_availability") is not None:
            fields["ai_copilot_availability"] = _boolean(body, "ai_copilot_availability")
        try:
            page = store.update_page(current.id, fields)
        except ExternalIdTaken:
            raise ApiError(
                400,
                "parameter_invalid",
                "external_id is already used by another page of this source",
                "external_id",
            ) from None
        if page is None:
            raise _not_found("External page")
        return page_json(page)

    @app.delete("/ai/external_pages/{page_id}")
    def delete_page(page_id: str) -> Any:
        page = store.delete_page(_path_id(page_id, "External page"))
        if page is None:
            raise _not_found("External page")
        return page_json(page)

    return app
