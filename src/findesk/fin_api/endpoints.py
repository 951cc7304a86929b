"""The Fin API routes, in both variants. Thin: parse, call the operation, shape."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, Security

from findesk.fin_api import operations as ops
from findesk.fin_api import schemas as s
from findesk.fin_api.routing import FinRoute, PostsOnlyRoute
from findesk.fin_api.security import bearer_scheme
from findesk.fin_ledger.calls import note
from findesk.kit.http import PROBLEM_JSON, db_of


def _errors(*statuses: int, envelope: bool) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The body is not valid JSON.",
        401: "Missing, invalid, expired or revoked token (or a bad request signature).",
        404: "An id in the request does not exist.",
        409: "The request conflicts with an existing object.",
        413: "The body is larger than the limit.",
        422: "The request is not valid.",
    }
    if envelope:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    else:
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
    return {status: {"description": described[status], "content": content} for status in statuses}


READ_ERRORS = (401, 404, 413, 422)
WRITE_ERRORS = (400, 401, 404, 413, 422)
CREATE_ERRORS = (400, 401, 404, 409, 413, 422)

# Bearer-token APIs (no cookies, so no CSRF risk): a body without Content-Type is still JSON.
rest = APIRouter(
    route_class=FinRoute, dependencies=[Security(bearer_scheme)], strict_content_type=False
)
posts = APIRouter(
    route_class=PostsOnlyRoute, dependencies=[Security(bearer_scheme)], strict_content_type=False
)


def _status(response: Response, created: bool) -> None:
    response.status_code = 201 if created else 200


def _encoded(body: bytes) -> Response:
    """get_messages answers with every message (Fin has no paging): its JSON, encoded once in
    the worker thread (``wire.encode_messages``), is the same bytes as the route's
    response_model gives, which still documents it; a Response is not validated or encoded
    again."""
    return Response(body, media_type="application/json")


def _note_created(request: Request, out: s.CreatedConversationOut) -> None:
    note(
        request,
        conversation_id=out.conversation.id,
        message_ids=[out.initial_message.id],
    )


# --- REST variant ---------------------------------------------------------------------------


@rest.get(
    "/user",
    response_model=s.EndUserOut,
    tags=["Fin API (REST)"],
    operation_id="getUser",
    responses=_errors(*READ_ERRORS, envelope=False),
)
def rest_get_user(request: Request, user_id: Annotated[str, Query(min_length=1)]) -> s.EndUserOut:
    """Retrieve an end user by id (each sync)."""
    note(request, user_id=user_id)
    return ops.get_user(db_of(request), s.GetUserIn(user_id=user_id))


@rest.put(
    "/user",
    response_model=s.EndUserOut,
    tags=["Fin API (REST)"],
    operation_id="updateUser",
    responses=_errors(*WRITE_ERRORS, envelope=False),
)
def rest_update_user(request: Request, body: s.UpdateUserIn) -> s.EndUserOut:
    """Update an end user; attributes merge key by key, a null value removes the key."""
    note(request, user_id=body.user_id)
    return ops.update_user(db_of(request), body)


@rest.post(
    "/user",
    response_model=s.EndUserOut,
    status_code=201,
    tags=["Fin API (REST)"],
    operation_id="createUser",
    responses={
        200: {
            "description": "Created before with this object_id: the same user.",
            "model": s.EndUserOut,
        },
        **_errors(*CREATE_ERRORS, envelope=False),
    },
)
def rest_create_user(request: Request, response: Response, body: s.CreateUserIn) -> s.EndUserOut:
    """Create an end user; idempotent by object_id (201 first, 200 after)."""
    user, created = ops.create_user(db_of(request), body)
    note(request, user_id=user.id)
    _status(response, created)
    return user


@rest.get(
    "/agents",
    response_model=list[s.AgentOut],
    tags=["Fin API (REST)"],
    operation_id="getAgents",
    responses=_errors(401, envelope=False),
)
def rest_get_agents(request: Request) -> list[s.AgentOut]:
    """Every active agent, the bot that represents Fin first (used at setup)."""
    return ops.get_agents(db_of(request))


@rest.get(
    "/conversation",
    response_model=s.ConversationOut,
    tags=["Fin API (REST)"],
    operation_id="getConversation",
    responses=_errors(*READ_ERRORS, envelope=False),
)
def rest_get_conversation(
    request: Request, conversation_id: Annotated[str, Query(min_length=1)]
) -> s.ConversationOut:
    """Retrieve a conversation (each sync)."""
    note(request, conversation_id=conversation_id)
    return ops.get_conversation(
        db_of(request), s.GetConversationIn(conversation_id=conversation_id)
    )


@rest.put(
    "/conversation",
    response_model=s.ConversationOut,
    tags=["Fin API (REST)"],
    operation_id="updateConversation",
    responses=_errors(*WRITE_ERRORS, envelope=False),
)
def rest_update_conversation(request: Request, body: s.UpdateConversationIn) -> s.ConversationOut:
    """Partial update at the end of a sync run; `assignee_id: null` hands over to a human."""
    note(request, conversation_id=body.conversation_id)
    return ops.update_conversation(db_of(request), body)


@rest.post(
    "/conversation",
    response_model=s.CreatedConversationOut,
    status_code=201,
    tags=["Fin API (REST)"],
    operation_id="createConversation",
    responses={
        200: {
            "description": "Created before with this object_id.",
            "model": s.CreatedConversationOut,
        },
        **_errors(*CREATE_ERRORS, envelope=False),
    },
)
def rest_create_conversation(
    request: Request, response: Response, body: s.CreateConversationIn
) -> s.CreatedConversationOut:
    """Start a conversation with its first message; answers with both objects."""
    note(request, user_id=body.user_id)
    out, created = ops.create_conversation(db_of(request), body)
    _note_created(request, out)
    _status(response, created)
    return out


@rest.get(
    "/messages",
    response_model=list[s.MessageOut],
    tags=["Fin API (REST)"],
    operation_id="getMessages",
    responses=_errors(*READ_ERRORS, envelope=False),
)
def rest_get_messages(
    request: Request,
    conversation_id: Annotated[str, Query(min_length=1)],
    after_id: Annotated[str | None, Query()] = None,
) -> Response:
    """Messages in creation order; with a known `after_id`, only those after it."""
    note(request, conversation_id=conversation_id, after_id=after_id)
    req = s.GetMessagesIn(conversation_id=conversation_id, after_id=after_id)
    messages = ops.get_messages(db_of(request), req)
    note(request, message_ids=messages.ids)
    return _encoded(messages.array())


@rest.post(
    "/messages",
    response_model=s.MessageOut,
    status_code=201,
    tags=["Fin API (REST)"],
    operation_id="createMessage",
    responses={
        200: {"description": "Created before with this object_id.", "model": s.MessageOut},
        **_errors(*CREATE_ERRORS, envelope=False),
    },
)
def rest_create_message(
    request: Request, response: Response, body: s.CreateMessageIn
) -> s.MessageOut:
    """Add an end user's or Fin's message; idempotent by object_id."""
    note(request, conversation_id=body.conversation_id)
    message, created = ops.create_message(db_of(request), body)
    note(request, message_ids=[message.id])
    _status(response, created)
    return message


# --- posts-only variant ---------------------------------------------------------------------

TAG: list[str | Enum] = ["Fin API (posts-only)"]


@posts.post(
    "/get_user",
    response_model=s.Envelope[s.EndUserOut],
    tags=TAG,
    operation_id="postGetUser",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_get_user(request: Request, body: s.GetUserIn) -> s.Envelope[s.EndUserOut]:
    note(request, user_id=body.user_id)
    return s.Envelope(data=ops.get_user(db_of(request), body), error=None)


@posts.post(
    "/update_user",
    response_model=s.Envelope[s.EndUserOut],
    tags=TAG,
    operation_id="postUpdateUser",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_update_user(request: Request, body: s.UpdateUserIn) -> s.Envelope[s.EndUserOut]:
    note(request, user_id=body.user_id)
    return s.Envelope(data=ops.update_user(db_of(request), body), error=None)


@posts.post(
    "/create_user",
    response_model=s.Envelope[s.EndUserOut],
    status_code=201,
    tags=TAG,
    operation_id="postCreateUser",
    responses={
        200: {
            "description": "Created before with this object_id.",
            "model": s.Envelope[s.EndUserOut],
        },
        **_errors(*CREATE_ERRORS, envelope=True),
    },
)
def posts_create_user(
    request: Request, response: Response, body: s.CreateUserIn
) -> s.Envelope[s.EndUserOut]:
    user, created = ops.create_user(db_of(request), body)
    note(request, user_id=user.id)
    _status(response, created)
    return s.Envelope(data=user, error=None)


@posts.post(
    "/get_agents",
    response_model=s.Envelope[list[s.AgentOut]],
    tags=TAG,
    operation_id="postGetAgents",
    responses=_errors(400, 401, 413, 422, envelope=True),
)
def posts_get_agents(
    request: Request, body: Annotated[s.GetAgentsIn | None, Body()] = None
) -> s.Envelope[list[s.AgentOut]]:
    return s.Envelope(data=ops.get_agents(db_of(request)), error=None)


@posts.post(
    "/get_conversation",
    response_model=s.Envelope[s.ConversationOut],
    tags=TAG,
    operation_id="postGetConversation",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_get_conversation(
    request: Request, body: s.GetConversationIn
) -> s.Envelope[s.ConversationOut]:
    note(request, conversation_id=body.conversation_id)
    return s.Envelope(data=ops.get_conversation(db_of(request), body), error=None)


@posts.post(
    "/update_conversation",
    response_model=s.Envelope[s.ConversationOut],
    tags=TAG,
    operation_id="postUpdateConversation",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_update_conversation(
    request: Request, body: s.UpdateConversationIn
) -> s.Envelope[s.ConversationOut]:
    note(request, conversation_id=body.conversation_id)
    return s.Envelope(data=ops.update_conversation(db_of(request), body), error=None)


@posts.post(
    "/create_conversation",
    response_model=s.Envelope[s.CreatedConversationOut],
    status_code=201,
    tags=TAG,
    operation_id="postCreateConversation",
    responses={
        200: {
            "description": "Created before with this object_id.",
            "model": s.Envelope[s.CreatedConversationOut],
        },
        **_errors(*CREATE_ERRORS, envelope=True),
    },
)
def posts_create_conversation(
    request: Request, response: Response, body: s.CreateConversationIn
) -> s.Envelope[s.CreatedConversationOut]:
    note(request, user_id=body.user_id)
    out, created = ops.create_conversation(db_of(request), body)
    _note_created(request, out)
    _status(response, created)
    return s.Envelope(data=out, error=None)


@posts.post(
    "/get_messages",
    response_model=s.Envelope[list[s.MessageOut]],
    tags=TAG,
    operation_id="postGetMessages",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_get_messages(request: Request, body: s.GetMessagesIn) -> Response:
    note(request, conversation_id=body.conversation_id, after_id=body.after_id)
    messages = ops.get_messages(db_of(request), body)
    note(request, message_ids=messages.ids)
    return _encoded(b'{"data":' + messages.array() + b',"error":null}')


@posts.post(
    "/create_message",
    response_model=s.Envelope[s.MessageOut],
    status_code=201,
    tags=TAG,
    operation_id="postCreateMessage",
    responses={
        200: {
            "description": "Created before with this object_id.",
            "model": s.Envelope[s.MessageOut],
        },
        **_errors(*CREATE_ERRORS, envelope=True),
    },
)
def posts_create_message(
    request: Request, response: Response, body: s.CreateMessageIn
) -> s.Envelope[s.MessageOut]:
    note(request, conversation_id=body.conversation_id)
    message, created = ops.create_message(db_of(request), body)
    note(request, message_ids=[message.id])
    _status(response, created)
    return s.Envelope(data=message, error=None)
