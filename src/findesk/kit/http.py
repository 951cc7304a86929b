"""HTTP plumbing shared by every API: problem responses, request-size limit, app state access."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from findesk.kit.db import Database
from findesk.kit.errors import Problem
from findesk.kit.settings import Settings

PROBLEM_JSON = "application/problem+json"


def problem_response(problem: Problem, *, envelope: bool = False) -> JSONResponse:
    body: dict[str, Any] = problem.to_dict()
    if envelope:
        return JSONResponse(
            {"data": None, "error": body}, status_code=problem.status, headers=problem.headers
        )
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def validation_problem(exc: RequestValidationError) -> Problem:
    """Unparsable JSON is a 400; anything else that fails validation is a 422."""
    errors = [
        {
            "loc": [_loc_part(p) for p in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]
    if any(error["type"] == "json_invalid" for error in errors):
        return Problem("The request body is not valid JSON.", status=400, code="invalid_json")
    fields = ", ".join(".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in errors)
    return Problem(
        f"The request is not valid: {fields}.", status=422, code="validation_error", errors=errors
    )


def _loc_part(part: Any) -> Any:
    """A step of an error's location, short: an attribute's name may be 100,000 characters."""
    if isinstance(part, str) and len(part) > 64:
        return part[:60] + "..."
    return part


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def client_address(request: Request) -> str | None:
    """The client's address: the connection's, or the one a trusted proxy forwarded
    (FINDESK_TRUSTED_PROXIES); None when the server does not know it."""
    return request.client.host if request.client else None


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class BodySizeLimit:
    """Refuse request bodies over the limit with 413 before anything reads them whole.

    ``larger`` gives bigger limits to paths that take uploads (path suffix -> bytes); the
    refusal of a path in ``enveloped`` is wrapped in ``{data, error}`` (the posts-only variant)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: dict[str, int] | None = None,
        enveloped: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}
        self.enveloped = enveloped

    def limit_for(self, path: str) -> int:
        for suffix, limit in self.larger.items():
            if path.endswith(suffix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        problem = Problem(
            f"The request body is larger than {limit} bytes.",
            status=413,
            code="payload_too_large",
        )
        envelope = scope["path"] in self.enveloped
        await problem_response(problem, envelope=envelope)(scope, receive, send)


class _TooLarge(Exception):
    status = 413  # what the client is answered (a route timing the call may record it)


MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def check_json_value(value: Any) -> str | None:
    """Why a parsed JSON value cannot be stored (NUL or lone surrogates in a string, nesting
    deeper than ``MAX_JSON_DEPTH``), or None when it is fine. Iterative: no recursion limit."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return "a number is too large to store"
        if isinstance(item, str):
            if "\x00" in item:
                return "a string contains a NUL character"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a string is not valid Unicode"
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def load_json(body: bytes) -> Any:
    """The one JSON parser for request bodies. Unparsable JSON (including NaN/Infinity, numbers
    too long to convert and nesting too deep to parse) is a 400 problem; values no database
    can store (NUL, lone surrogates, nesting deeper than ``MAX_JSON_DEPTH``, numbers beyond a
    double such as ``1e400``) are a 422."""
    try:
        parsed = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise Problem(
            "The request body is not valid JSON.", status=400, code="invalid_json"
        ) from None
    problem = check_json_value(parsed)
    if problem:
        raise Problem(
            f"The request body cannot be stored: {problem}.", status=422, code="validation_error"
        )
    return parsed


async def parse_json_body(request: Request) -> None:
    """Parse a JSON body once, strictly (``load_json``), before FastAPI does (it reuses
    ``request._json``); on a refusal nothing further runs."""
    if request.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        return
    content_type = request.headers.get("content-type", "application/json").split(";")[0]
    content_type = content_type.strip().lower()
    if not (content_type == "application/json" or content_type.endswith("+json")):
        return
    body = await request.body()
    if not body:
        return
    request._json = load_json(body)


class GuardedRoute(APIRoute):
    """A route that runs ``guard`` (authentication) before the body is parsed, and answers every
    error as an RFC 7807 problem (inside ``{data, error}`` when ``envelope`` is set)."""

    envelope: ClassVar[bool] = False

    async def guard(self, request: Request) -> None:
        raise NotImplementedError

    def respond(self, problem: Problem) -> Response:
        """The answer to a refused request: an RFC 7807 problem (a route class of an API with
        its own error shape answers in that shape)."""
        return problem_response(problem, envelope=self.envelope)

    async def confirm(self, request: Request) -> None:
        """Called when a request that passed ``guard`` is refused: a guard that left part of
        its check to the endpoint finishes it here, so that the refusal is not answered
        before it (a 401 comes before any 422)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guard, confirm, respond = self.guard, self.confirm, self.respond

        async def route(request: Request) -> Response:
            try:
                await guard(request)
                try:
                    await parse_json_body(request)
                    return await handler(request)
                except (Problem, RequestValidationError, HTTPException):
                    await confirm(request)
                    raise
            except Problem as exc:
                return respond(exc)
            except RequestValidationError as exc:
                return respond(validation_problem(exc))
            except HTTPException as exc:
                return respond(Problem(str(exc.detail), status=exc.status_code, code="http_error"))
            except ClientDisconnect:  # gone before its body arrived: nobody to answer, no crash
                return Response(status_code=400)

        return route
