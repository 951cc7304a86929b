"""``/api/v1/visitors/convert``: Intercom's convert visitor, in its request, response and
error shapes, so that a team's scripts port over. Thin: authenticate, call the domain, shape.

Who may: any active agent, as any agent may reply or assign. A merge moves conversations
between end users, never deletes one (the visitor's ids keep answering), and every moved
conversation's history says who merged it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from findesk.agent_api import schemas as s
from findesk.agent_api.security import AgentRoute, agent_api_router, current_agent
from findesk.kit.actor import agent as agent_actor
from findesk.kit.http import PROBLEM_JSON, db_of
from findesk.users import repository
from findesk.users import service as users
from findesk.users.models import EndUser

# Our problem codes as Intercom's error codes.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "action_forbidden",
    404: "not_found",
    409: "conflict",
    413: "bad_request",
    422: "parameter_invalid",
}


def intercom_error(status: int, problem: dict[str, Any]) -> dict[str, Any]:
    """A problem (``kit.errors.Problem.to_dict``) as Intercom's ``error.list``: one error per
    refused field, or one for the whole request."""
    code = _CODES.get(status, "server_error" if status >= 500 else "bad_request")
    errors: list[dict[str, Any]] = []
    for error in problem.get("errors") or ():
        field = error.get("field")
        if field is None and error.get("loc"):
            field = ".".join(str(p) for p in error["loc"] if p != "body") or None
        item_code = code
        if error.get("type") == "missing":
            item_code = "parameter_not_found"
        message = error.get("message") or error.get("msg") or problem.get("detail")
        errors.append({"code": item_code, "message": message, "field": field})
    if not errors:
        errors.append({"code": code, "message": problem.get("detail"), "field": None})
    return {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": errors}


class IntercomRoute(AgentRoute):
    """An agent API route whose every refusal (authentication, validation, the domain's) is
    answered in Intercom's ``error.list`` shape instead of a problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await handler(request)
            if response.headers.get("content-type", "").startswith(PROBLEM_JSON):
                problem = json.loads(bytes(response.body))
                reshaped = JSONResponse(
                    intercom_error(response.status_code, problem),
                    status_code=response.status_code,
                )
                for name in ("www-authenticate", "retry-after"):
                    if name in response.headers:
                        reshaped.headers[name] = response.headers[name]
                return reshaped
            return response

        return route


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IntercomError"}}},
    }


router = agent_api_router(tag="Visitors", not_found="No such visitor or user.")
router.route_class = IntercomRoute

ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not valid JSON, or the Idempotency-Key is not valid."),
    401: _error("Missing or invalid agent token."),
    404: _error("No such visitor, or no user with that `id`."),
    409: _error(
        "Several end users have the email given (name them by id), or a request with this "
        "Idempotency-Key is still being processed."
    ),
    422: _error(
        "The request is not valid; or the visitor has an email (a user already); or no such "
        "user and no email to make the visitor that user."
    ),
}


def contact_view(session: Any, user: EndUser) -> s.ContactView:
    merged = [
        a.alias if a.kind == "id" else f"object_id:{a.alias}"
        for a in repository.aliases_of(session, user.id)
    ]
    return s.ContactView(
        id=user.id,
        external_id=user.object_id,
        role=user.role,
        email=user.email,
        name=user.name,
        avatar=user.photo_url,
        custom_attributes=user.attributes or {},
        created_at=int(user.created_at.timestamp()),
        updated_at=int(user.updated_at.timestamp()),
        merged_ids=merged,
    )


def _ref(ref: s.ContactRef) -> users.UserRef:
    return users.UserRef(id=ref.id, user_id=ref.user_id, email=ref.email)


@router.post("/visitors/convert", response_model=s.ContactView, responses=ERRORS)
def convert_visitor(request: Request, body: s.ConvertVisitorIn) -> s.ContactView:
    """Make a visitor (an end user without an email) a user. When the user named exists, the
    visitor is merged into it: its conversations and messages move, its attributes fill the
    ones the user lacks (never overwriting), it is deleted, and every id Fin held for it
    (its id and object_id) resolves to the user from then on; Fin is told about each open
    conversation that moved. Otherwise the visitor becomes the user (it takes the `email`,
    and the `user_id` as its object_id). Repeating a merge answers the same user."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        done = users.convert_visitor(
            session, _ref(body.visitor), _ref(body.user), agent_actor(me.id)
        )
        return contact_view(session, done.user)
