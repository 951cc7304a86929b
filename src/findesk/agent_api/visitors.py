"""``/api/v1/visitors/convert``: Intercom's convert visitor, in its request, response and
error shapes, so that a team's scripts port over. Thin: authenticate, call the domain, shape.

Who may: any active agent, as any agent may reply or assign. A merge moves conversations
between end users, never deletes one (the visitor's ids keep answering), and every moved
conversation's history says who merged it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from findesk.agent_api import schemas as s
from findesk.agent_api.intercom import IntercomRoute, error_doc
from findesk.agent_api.security import agent_api_router, current_agent
from findesk.kit.actor import agent as agent_actor
from findesk.kit.http import db_of
from findesk.users import repository
from findesk.users import service as users
from findesk.users.models import EndUser

router = agent_api_router(tag="Visitors", not_found="No such visitor or user.")
router.route_class = IntercomRoute


ERRORS: dict[int | str, dict[str, Any]] = {
    400: error_doc("The body is not valid JSON, or the Idempotency-Key is not valid."),
    401: error_doc("Missing or invalid agent token."),
    404: error_doc("No such visitor, or no user with that `id`."),
    409: error_doc(
        "Several end users have the email given (name them by id), or a request with this "
        "Idempotency-Key is still being processed."
    ),
    422: error_doc(
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
