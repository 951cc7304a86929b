"""Agent authentication for the agent API: a personal token as a bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from findesk.agent_api.idempotency import RESPONSES as IDEMPOTENCY_RESPONSES
from findesk.agent_api.idempotency import idempotent, read_key
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

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in {method.upper() for method in kwargs.get("methods") or ()}:
            endpoint = idempotent(endpoint, lambda: self)
            kwargs["responses"] = {**IDEMPOTENCY_RESPONSES, **(kwargs.get("responses") or {})}
        super().__init__(path, endpoint, **kwargs)

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
                (422, "The request is not valid."),
            )
        },
    )
