"""HTTP plumbing shared by every API: problem responses, request-size limit, app state access."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
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
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    if any(error["type"] == "json_invalid" for error in errors):
        return Problem("The request body is not valid JSON.", status=400, code="invalid_json")
    fields = ", ".join(".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in errors)
    return Problem(
        f"The request is not valid: {fields}.", status=422, code="validation_error", errors=errors
    )


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before anything reads them whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(
            f"The request body is larger than {self.max_bytes} bytes.",
            status=413,
            code="payload_too_large",
        )
        envelope = scope["path"].rsplit("/", 1)[-1] in POSTS_ONLY_OPERATIONS
        await problem_response(problem, envelope=envelope)(scope, receive, send)


class _TooLarge(Exception):
    pass


# Path names of the posts-only variant, whose errors are wrapped in {data, error}.
POSTS_ONLY_OPERATIONS = frozenset(
    {
        "get_user",
        "update_user",
        "create_user",
        "get_agents",
        "get_conversation",
        "update_conversation",
        "create_conversation",
        "get_messages",
        "create_message",
    }
)



class GuardedRoute(APIRoute):
    """A route that runs ``guard`` (authentication) before the body is parsed, and answers every
    error as an RFC 7807 problem (inside ``{data, error}`` when ``envelope`` is set)."""

    envelope: ClassVar[bool] = False

    async def guard(self, request: Request) -> None:
        raise NotImplementedError

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        envelope, guard = self.envelope, self.guard

        async def route(request: Request) -> Response:
            try:
                await guard(request)
                return await handler(request)
            except Problem as exc:
                return problem_response(exc, envelope=envelope)
            except RequestValidationError as exc:
                return problem_response(validation_problem(exc), envelope=envelope)
            except HTTPException as exc:
                problem = Problem(str(exc.detail), status=exc.status_code, code="http_error")
                return problem_response(problem, envelope=envelope)

        return route
