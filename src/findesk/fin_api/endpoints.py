"""The Fin API routes, in both variants. Thin: parse, call the operation, shape."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic_core import to_json

from findesk.fin_api import operations as ops
from findesk.fin_api import schemas as s
from findesk.fin_api.routing import FinRoute, PostsOnlyRoute
from findesk.fin_api.security import authorized_reader, authorized_session, bearer_scheme
from findesk.fin_ledger.calls import note
from findesk.kit.http import PROBLEM_JSON


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
# The token is checked by the route class (``FinRoute``), not by a FastAPI dependency: solving
# one costs every call more than checking the token; ``document_bearer_auth`` documents it.
rest = APIRouter(route_class=FinRoute, strict_content_type=False)
posts = APIRouter(route_class=PostsOnlyRoute, strict_content_type=False)


def document_bearer_auth(schema: dict[str, Any], prefix: str) -> None:
    """Declare, in the OpenAPI document, that every Fin API operation (the routers' routes,
    included under ``prefix``) takes the bearer token."""
    name = bearer_scheme.scheme_name
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[name] = bearer_scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    paths = {
        prefix + route.path
        for route in (*rest.routes, *posts.routes)
        if isinstance(route, APIRoute)
    }
    for path, operations in schema.get("paths", {}).items():
        if path in paths:
            for operation in operations.values():
                operation["security"] = [{name: []}]


def _json(out: Any, *, created: bool = False, envelope: bool = False) -> Response:
    """The answer, encoded once: the route's response_model documents it, and a Response is
    not validated or encoded again. ``created``: 201, else 200 (the object existed: the
    create operations are idempotent); ``envelope``: inside the posts-only ``{data, error}``."""
    body = out if isinstance(out, bytes) else to_json(out)
    if envelope:
        body = b'{"data":' + body + b',"error":null}'
    return Response(body, status_code=201 if created else 200, media_type="application/json")


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
def rest_get_user(request: Request, user_id: Annotated[str, Query(min_length=1)]) -> Response:
    """Retrieve an end user by id (each sync)."""
    with authorized_session(request, write=False) as session:
        note(request, user_id=user_id)
        return _json(ops.get_user(session, s.GetUserIn(user_id=user_id)))


@rest.put(
    "/user",
    response_model=s.EndUserOut,
    tags=["Fin API (REST)"],
    operation_id="updateUser",
    responses=_errors(*WRITE_ERRORS, envelope=False),
)
def rest_update_user(request: Request, body: s.UpdateUserIn) -> Response:
    """Update an end user; attributes merge key by key, a null value removes the key."""
    with authorized_session(request, write=True) as session:
        note(request, user_id=body.user_id)
        out = ops.update_user(session, body)
    return _json(out)


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
def rest_create_user(request: Request, body: s.CreateUserIn) -> Response:
    """Create an end user; idempotent by object_id (201 first, 200 after)."""
    with authorized_session(request, write=True) as session:
        user, created = ops.create_user(session, body)
    note(request, user_id=user.id)
    return _json(user, created=created)


@rest.get(
    "/agents",
    response_model=list[s.AgentOut],
    tags=["Fin API (REST)"],
    operation_id="getAgents",
    responses=_errors(401, envelope=False),
)
def rest_get_agents(request: Request) -> Response:
    """Every active agent, the bot that represents Fin first (used at setup)."""
    with authorized_session(request, write=False) as session:
        return _json(ops.get_agents(session))


@rest.get(
    "/conversation",
    response_model=s.ConversationOut,
    tags=["Fin API (REST)"],
    operation_id="getConversation",
    responses=_errors(*READ_ERRORS, envelope=False),
)
def rest_get_conversation(
    request: Request, conversation_id: Annotated[str, Query(min_length=1)]
) -> Response:
    """Retrieve a conversation (each sync)."""
    req = s.GetConversationIn(conversation_id=conversation_id)
    with authorized_reader(request) as connection:
        note(request, conversation_id=conversation_id)
        return _json(ops.get_conversation(connection, req))


@rest.put(
    "/conversation",
    response_model=s.ConversationOut,
    tags=["Fin API (REST)"],
    operation_id="updateConversation",
    responses=_errors(*WRITE_ERRORS, envelope=False),
)
def rest_update_conversation(request: Request, body: s.UpdateConversationIn) -> Response:
    """Partial update at the end of a sync run; `assignee_id: null` hands over to a human."""
    with authorized_session(request, write=True) as session:
        note(request, conversation_id=body.conversation_id)
        out = ops.update_conversation(session, body)
    return _json(out)


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
def rest_create_conversation(request: Request, body: s.CreateConversationIn) -> Response:
    """Start a conversation with its first message; answers with both objects."""
    with authorized_session(request, write=True) as session:
        note(request, user_id=body.user_id)
        out, created = ops.create_conversation(session, body)
    _note_created(request, out)
    return _json(out, created=created)


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
    req = s.GetMessagesIn(conversation_id=conversation_id, after_id=after_id)
    with authorized_reader(request) as connection:
        note(request, conversation_id=conversation_id, after_id=after_id)
        messages = ops.get_messages(connection, req)
    note(request, message_ids=messages.ids)
    return _json(messages.array())


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
def rest_create_message(request: Request, body: s.CreateMessageIn) -> Response:
    """Add an end user's or Fin's message; idempotent by object_id."""
    with authorized_session(request, write=True) as session:
        note(request, conversation_id=body.conversation_id)
        message, created = ops.create_message(session, body)
    note(request, message_ids=[message.id])
    return _json(message, created=created)


# --- posts-only variant ---------------------------------------------------------------------

TAG: list[str | Enum] = ["Fin API (posts-only)"]


@posts.post(
    "/get_user",
    response_model=s.Envelope[s.EndUserOut],
    tags=TAG,
    operation_id="postGetUser",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_get_user(request: Request, body: s.GetUserIn) -> Response:
    with authorized_session(request, write=False) as session:
        note(request, user_id=body.user_id)
        return _json(ops.get_user(session, body), envelope=True)


@posts.post(
    "/update_user",
    response_model=s.Envelope[s.EndUserOut],
    tags=TAG,
    operation_id="postUpdateUser",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_update_user(request: Request, body: s.UpdateUserIn) -> Response:
    with authorized_session(request, write=True) as session:
        note(request, user_id=body.user_id)
        out = ops.update_user(session, body)
    return _json(out, envelope=True)


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
def posts_create_user(request: Request, body: s.CreateUserIn) -> Response:
    with authorized_session(request, write=True) as session:
        user, created = ops.create_user(session, body)
    note(request, user_id=user.id)
    return _json(user, created=created, envelope=True)


@posts.post(
    "/get_agents",
    response_model=s.Envelope[list[s.AgentOut]],
    tags=TAG,
    operation_id="postGetAgents",
    responses=_errors(400, 401, 413, 422, envelope=True),
)
def posts_get_agents(
    request: Request, body: Annotated[s.GetAgentsIn | None, Body()] = None
) -> Response:
    with authorized_session(request, write=False) as session:
        return _json(ops.get_agents(session), envelope=True)


@posts.post(
    "/get_conversation",
    response_model=s.Envelope[s.ConversationOut],
    tags=TAG,
    operation_id="postGetConversation",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_get_conversation(request: Request, body: s.GetConversationIn) -> Response:
    with authorized_reader(request) as connection:
        note(request, conversation_id=body.conversation_id)
        return _json(ops.get_conversation(connection, body), envelope=True)


@posts.post(
    "/update_conversation",
    response_model=s.Envelope[s.ConversationOut],
    tags=TAG,
    operation_id="postUpdateConversation",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_update_conversation(request: Request, body: s.UpdateConversationIn) -> Response:
    with authorized_session(request, write=True) as session:
        note(request, conversation_id=body.conversation_id)
        out = ops.update_conversation(session, body)
    return _json(out, envelope=True)


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
def posts_create_conversation(request: Request, body: s.CreateConversationIn) -> Response:
    with authorized_session(request, write=True) as session:
        note(request, user_id=body.user_id)
        out, created = ops.create_conversation(session, body)
    _note_created(request, out)
    return _json(out, created=created, envelope=True)


@posts.post(
    "/get_messages",
    response_model=s.Envelope[list[s.MessageOut]],
    tags=TAG,
    operation_id="postGetMessages",
    responses=_errors(*WRITE_ERRORS, envelope=True),
)
def posts_get_messages(request: Request, body: s.GetMessagesIn) -> Response:
    with authorized_reader(request) as connection:
        note(request, conversation_id=body.conversation_id, after_id=body.after_id)
        messages = ops.get_messages(connection, body)
    note(request, message_ids=messages.ids)
    return _json(messages.array(), envelope=True)


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
def posts_create_message(request: Request, body: s.CreateMessageIn) -> Response:
    with authorized_session(request, write=True) as session:
        note(request, conversation_id=body.conversation_id)
        message, created = ops.create_message(session, body)
    note(request, message_ids=[message.id])
    return _json(message, created=created, envelope=True)
