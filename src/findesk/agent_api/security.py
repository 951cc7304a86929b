"""Agent authentication for the agent API: a personal token as a bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPBearer
from starlette._utils import get_route_path  # how Route.matches reads the path
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from findesk.agent_api.idempotency import INVALID_JSON, idempotent, read_key
from findesk.agent_api.idempotency import RESPONSES as IDEMPOTENCY_RESPONSES
from findesk.agents.models import Agent
from findesk.auth import service as auth
from findesk.fin_api.security import bearer_token
from findesk.inbox.security import COOKIE, require_viewer
from findesk.kit.http import PROBLEM_JSON, GuardedRoute, db_of

agent_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AgentToken",
    description="An agent's personal token (`findesk agents token EMAIL`).",
)


async def authenticate_agent(request: Request) -> Agent:
    token = bearer_token(request)
    db = db_of(request)

    def lookup() -> Agent:
        with db.read_session() as session:
            row = auth.check_agent_token(session, token)
            agent, stale = row.agent, auth.token_use_is_stale(row)
        if stale:  # at most once an hour per token: not a write per call
            with db.transaction() as session:
                auth.record_token_use(session, row.token_hash)
        return agent

    return await run_in_threadpool(lookup)


class AgentRoute(GuardedRoute):
    """A personal token (scripts, integrations), or the inbox's session cookie with its CSRF
    token on every change. Every POST takes an ``Idempotency-Key`` (see ``idempotency``)."""

    # The paths without parameters (``/api/v1/articles/preview``), which no route with
    # parameters may take (see ``matches``).
    literal_paths: ClassVar[set[str]] = set()

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {method.upper() for method in kwargs.get("methods") or ()}
        common: dict[int | str, dict[str, Any]] = {}
        if methods & {"PATCH", "POST", "PUT"}:  # a JSON body, which may not parse
            common[400] = INVALID_JSON
        if "POST" in methods:
            endpoint = idempotent(endpoint, lambda: self)
            common.update(IDEMPOTENCY_RESPONSES)
        kwargs["responses"] = {**common, **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)
        if not self.param_convertors:
            AgentRoute.literal_paths.add(self.path)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """As OpenAPI matches paths: a literal one before a templated one, whatever the method.
        ``GET /api/v1/articles/preview`` is a 405 (``Allow: POST``), not article "preview"."""
        if self.param_convertors and get_route_path(scope) in self.literal_paths:
            return Match.NONE, {}
        return super().matches(scope)

    async def guard(self, request: Request) -> None:
        if "authorization" not in request.headers and COOKIE in request.cookies:
            request.state.agent = (await require_viewer(request)).agent
        else:
            request.state.agent = await authenticate_agent(request)
        await read_key(request, request.state.agent)


def current_agent(request: Request) -> Agent:
    agent: Agent = request.state.agent
    return agent


def agent_api_router(*, tag: str, not_found: str) -> APIRouter:
    """A router of ``/api/v1``: every route authenticated as above, its errors documented."""
    return APIRouter(
        prefix="/api/v1",
        route_class=AgentRoute,
        dependencies=[Security(agent_bearer)],
        tags=[tag],
        responses={
            status: {
                "description": text,
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
            }
            for status, text in (
                (401, "Missing or invalid agent token."),
                (404, not_found),
                (413, "The request body is larger than the limit."),
                (422, "The request is not valid."),
            )
        },
    )
