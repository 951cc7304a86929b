"""The agent API's routes that mirror Intercom's (convert visitor, custom object instances,
tickets and their types) answer every refusal in Intercom's ``error.list`` shape, so that a team's
scripts written for Intercom port over. One route class does it for all of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from findesk.agent_api.schemas import IntercomError, IntercomErrorItem
from findesk.agent_api.security import AgentRoute
from findesk.kit.errors import Problem
from findesk.kit.http import PROBLEM_JSON

ERROR_SCHEMA = {"$ref": "#/components/schemas/IntercomError"}
# Intercom's codes for findesk's statuses (``kit.errors``).
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "action_forbidden",
    404: "not_found",
    409: "conflict",
    413: "bad_request",
    422: "parameter_invalid",
    429: "rate_limit_exceeded",
}
# Headers a refusal keeps when it is reshaped: the 401's challenge, the 429's wait.
_KEPT_HEADERS = ("www-authenticate", "retry-after")


def _field(error: dict[str, Any]) -> str | None:
    if error.get("field"):
        return str(error["field"])
    loc = [str(p) for p in error.get("loc") or () if p not in ("body", "query", "path")]
    return ".".join(loc) or None


def error_list(
    status: int, detail: str | None, errors: list[dict[str, Any]] | None
) -> IntercomError:
    """A refusal (a problem's status, detail and per-field errors) as ``error.list``: one
    error a refused field (with the Intercom code the domain gave it, else
    ``parameter_not_found`` for a missing one, else the status's), or one for the request."""
    code = _CODES.get(status, "server_error" if status >= 500 else "bad_request")
    items = [
        IntercomErrorItem(
            code=error.get("code")
            or ("parameter_not_found" if error.get("type") == "missing" else code),
            message=error.get("message") or error.get("msg") or detail,
            field=_field(error),
        )
        for error in errors or ()
    ]
    return IntercomError(
        request_id=str(uuid.uuid4()),
        errors=items or [IntercomErrorItem(code=code, message=detail, field=None)],
    )


def intercom_error(problem: Problem) -> JSONResponse:
    body = error_list(problem.status, problem.detail, problem.errors)
    return JSONResponse(body.model_dump(), status_code=problem.status, headers=problem.headers)


def error_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response of these routes: Intercom's error shape."""
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


class IntercomRoute(AgentRoute):
    """An agent API route (the same authentication) whose refusals are Intercom's
    ``error.list``, documented so: the problems it raises, and those answered on its way (the
    idempotency layer's). A body over the size limit is still refused, before any route, as a
    problem (413), and so is a path that matches no route."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # New dicts: the common ones (AgentRoute's 400 and 409) are shared with other routes.
        problem_doc = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
        for status, response in list(self.responses.items()):
            content = dict(response.get("content") or {})
            if str(status) != "413" and PROBLEM_JSON in content:
                content = {"application/json": {"schema": ERROR_SCHEMA}}
            if str(status) == "404":
                content = {"application/json": {"schema": ERROR_SCHEMA}, **problem_doc}
            self.responses[status] = {**response, "content": content}

    def respond(self, problem: Problem) -> Response:
        return intercom_error(problem)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await handler(request)
            if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
                return response
            problem = json.loads(bytes(response.body))
            body = error_list(response.status_code, problem.get("detail"), problem.get("errors"))
            reshaped = JSONResponse(body.model_dump(), status_code=response.status_code)
            for name in _KEPT_HEADERS:
                if name in response.headers:
                    reshaped.headers[name] = response.headers[name]
            return reshaped

        return route
