"""``GET /api/connectors/{lookup_id}``: the endpoint Fin calls, as an Intercom Data Connector,
to run one lookup. Thin: the service authenticates, checks, answers and records the call.

The URL template a Data Connector uses (``service.url_template``; the admin page shows it with
each new token)::

    {FINDESK_PUBLIC_BASE_URL}/api/connectors/lkp_…?order_id={{order_id}}&user_id={{user_id}}&conversation_id={{conversation_id}}

every input of the lookup as a query parameter, then the context variables ``user_id`` and
``conversation_id``: findesk's ids of the end user and the conversation, which Fin knows from
the Custom Helpdesk contract. An empty value, or a ``{{…}}`` template Intercom left unfilled,
counts as absent. The header
``Authorization: Bearer flk_…`` carries one of the lookup's tokens.

Answers (JSON):

* 200 ``{"found": true, "order": {"id": "A-1042", "status": "shipped", …}}`` (an object by
  external id: the key is the type's name in snake case, ``id`` its external id);
  ``{"found": true, "type": "order", "count": 2, "results": [{…}, …]}`` (by attribute, at most
  20, newest first); ``{"found": true, "count": 1, "tickets": [{"ticket_id": "12", "state": …}]}``
  (the end user's open tickets); ``{"found": true, "ticket": {…}}`` (the conversation's ticket);
  ``{"found": false}`` when there is nothing, or nothing of this end user's.
  Only the lookup's fields are returned; a redacted one is masked (``****1234``).
* Refusals: ``{"error": {"code": …, "message": …, "input": …}}`` with 400 (``missing_input``,
  ``invalid_input``: ``input`` names it), 401 (``unauthorized``), 403
  (``conversation_not_of_user``), 404 (``not_found``: no such lookup, or disabled), 429
  (``rate_limited``, with ``Retry-After`` in seconds).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from findesk.kit.http import db_of, settings_of
from findesk.lookups import service

router = APIRouter(prefix=service.PATH, tags=["Lookups (Fin Data Connectors)"])


@router.get(
    "/{lookup_id}",
    responses={
        400: {"description": "A missing or malformed input (`error.input` names it)."},
        401: {"description": "No token, or not one of this lookup's live tokens."},
        403: {"description": "`conversation_id` is not a conversation of `user_id`."},
        404: {"description": "No such lookup, or it is disabled."},
        429: {"description": "Over the lookup's calls a minute; see `Retry-After`."},
    },
)
def call_lookup(
    request: Request,
    lookup_id: Annotated[str, Path(min_length=1, max_length=64)],
) -> JSONResponse:
    """Run the lookup with the inputs in the query string, as Fin's Data Connector does."""
    params = {key: value for key, value in request.query_params.items()}
    keep_calls = timedelta(days=settings_of(request).lookup_calls_retention_days)
    with db_of(request).transaction() as session:
        answer = service.answer_call(
            session, lookup_id, request.headers.get("authorization"), params, keep_calls=keep_calls
        )
    headers = {"Cache-Control": "no-store", **answer.headers}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)
