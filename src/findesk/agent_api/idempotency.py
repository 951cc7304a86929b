"""``Idempotency-Key`` on every POST of the agent API, once for all routes (see ``AgentRoute``).

The guard reads the key (after authenticating: keys are per agent) and fingerprints the request.
The endpoint is wrapped: in its worker thread, one transaction claims the key, runs the endpoint
(whose own ``db.transaction()`` joins it as a savepoint), renders the response and stores it, and
commits all of it at once. Holding the write lock never spans a hop between threads, so a full
thread pool cannot starve a request that holds it.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from findesk.agents.models import Agent
from findesk.idempotency import service as idempotency
from findesk.kit.db import Database
from findesk.kit.http import PROBLEM_JSON, db_of

log = logging.getLogger(__name__)

_REQUEST = "idempotency_request"
_RESPONSE = "idempotency_response"
_KEY = "idempotency_key_header"
# ``idempotency.checked_key``'s rule, for the schema: printable ASCII, not only spaces.
KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"
KeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.KEY_HEADER,
        min_length=1,
        max_length=idempotency.MAX_KEY_LENGTH,
        # What ``checked_key`` accepts (the guard answers anything else with a 400).
        pattern=KEY_PATTERN,
        description=(
            "Any unique string (a UUID, say) of 1 to 255 printable ASCII characters, not only "
            "spaces. A retry of the same request with the same key, within 24 hours, is "
            "answered with the first response (with `Idempotent-Replayed: true`) and changes "
            "nothing more. Keys are per agent."
        ),
    ),
]


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
    }


INVALID_JSON = _problem("The request body is not valid JSON.")
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem(
        "The request body is not valid JSON, or the Idempotency-Key is empty, too long or not "
        "printable ASCII."
    ),
    409: _problem("A request with this Idempotency-Key is still being processed."),
}


async def read_key(request: Request, agent: Agent) -> None:
    """Called by the guard once the agent is known: remember a POST's key and fingerprint."""
    raw = request.headers.get(idempotency.KEY_HEADER)
    if request.method != "POST" or raw is None:
        return
    key = idempotency.checked_key(raw)
    body = await request.body()
    path = request.url.path
    fingerprint = idempotency.fingerprint("POST", path, request.url.query, body)
    request.state.idempotency = idempotency.Call(agent.id, key, "POST", path, fingerprint)


def idempotent(endpoint: Callable[..., Any], route: Callable[[], APIRoute]) -> Callable[..., Any]:
    """Wrap a (synchronous) endpoint so that a request with a key is answered once."""
    if inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{endpoint.__name__}: idempotent endpoints must be plain functions")
    signature = inspect.signature(endpoint, eval_str=True)
    params = list(signature.parameters.values())
    request_param = next((p.name for p in params if p.annotation is Request), None)
    response_param = next((p.name for p in params if p.annotation is Response), None)
    added = [
        inspect.Parameter(_KEY, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=KeyHeader)
    ]
    if request_param is None:
        added.append(
            inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )
    if response_param is None:
        added.append(
            inspect.Parameter(_RESPONSE, inspect.Parameter.KEYWORD_ONLY, annotation=Response)
        )

    @functools.wraps(endpoint)
    def call(**kwargs: Any) -> Any:
        kwargs.pop(_KEY, None)  # read (and checked) by the guard
        request: Request = kwargs[request_param] if request_param else kwargs.pop(_REQUEST)
        sub_response: Response = kwargs[response_param] if response_param else kwargs.pop(_RESPONSE)
        pending: idempotency.Call | None = getattr(request.state, "idempotency", None)
        if pending is None:
            return endpoint(**kwargs)
        db = db_of(request)
        with db.transaction() as session:
            stored = idempotency.claim(session, pending)
            if stored is None:
                with db.joining(session):
                    value = endpoint(**kwargs)
                answer = _rendered(route(), value, sub_response)
                headers = {k: v for k, v in answer.headers.items() if k != "content-length"}
                idempotency.remember_response(
                    session, pending, answer.status_code, bytes(answer.body), headers
                )
        if stored is not None:
            return _replayed(stored)
        _prune_now_and_then(db)
        return answer

    call.__signature__ = signature.replace(parameters=[*params, *added])  # type: ignore[attr-defined]
    return call


@functools.lru_cache(maxsize=256)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _rendered(route: APIRoute, value: Any, sub_response: Response) -> Response:
    """The response FastAPI would send for ``value``, rendered here, inside the transaction."""
    if isinstance(value, Response):
        answer = value
    else:
        if route.response_model is not None:
            adapter = _adapter(route.response_model)
            body = adapter.dump_json(
                adapter.validate_python(value, from_attributes=True), by_alias=True
            )
        else:
            body = _adapter(Any).dump_json(jsonable_encoder(value))
        status = getattr(sub_response, "status_code", None) or route.status_code or 200
        answer = Response(content=body, status_code=status, media_type="application/json")
    # Headers the endpoint set on FastAPI's response parameter (Location, say).
    answer.headers.raw.extend(
        (name, value) for name, value in sub_response.headers.raw if name != b"content-length"
    )
    return answer


def _replayed(stored: idempotency.StoredResponse) -> Response:
    headers = {**stored.headers, idempotency.REPLAYED_HEADER: "true"}
    return Response(content=stored.body, status_code=stored.status, headers=headers)


def _prune_now_and_then(db: Database) -> None:
    """Delete expired keys, at most every few minutes per process; never fail the request."""
    if not idempotency.prune_due():
        return
    try:
        with db.transaction() as session:
            idempotency.prune(session)
    except Exception:  # a later request prunes instead
        log.exception("could not prune expired idempotency keys")
