"""Agent authentication for the agent API: a personal token as a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Security
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

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
            return auth.authenticate_agent_token(session, token)

    return await run_in_threadpool(lookup)


class AgentRoute(GuardedRoute):
    """A personal token (scripts, integrations), or the inbox's session cookie with its CSRF
    token on every change."""

    async def guard(self, request: Request) -> None:
        if "authorization" not in request.headers and COOKIE in request.cookies:
            request.state.agent = (await require_viewer(request)).agent
        else:
            request.state.agent = await authenticate_agent(request)


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
