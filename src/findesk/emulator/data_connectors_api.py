"""An emulation of Intercom's Data Connectors API (spec 9; Preview, graduated to 2.16), served on
the AI Content emulator's app (``content_api.create_content_api`` includes it), so that it shares
the bearer auth, the per-token rate limit, request ids and the ``error.list`` shape. Also
``execute``: what Fin does when it calls a live connector, for the emulator's answerer.

Where Intercom's text is silent this module decides, and says so here:

Versions
    The paths answer only with ``Intercom-Version`` ``2.16``, ``Preview`` or ``Unstable`` (the
    versions that have them); any other version (2.14 by default) gets 404 ``not_found``, as a
    path that version does not know would.

Connectors
    Ids are integers handed out by the store, exposed as strings. ``created_at`` and
    ``updated_at`` are ISO-8601 strings (UTC, milliseconds). ``created_by_admin_id`` and
    ``updated_by_admin_id`` are a number derived from the access token used (the emulator has
    no admins). Each connector keeps two versions: PATCH edits the **draft**; sending
    ``state: "live"`` (on its own or with other fields, which are applied first) publishes the
    draft as the **live** version; ``state: "draft"`` withdraws the live version (409
    ``data_connector_in_use`` while in use). ``GET ?state_version=live`` (the default) answers
    the live version, or the draft while the connector was never published; ``state`` is the
    connector's, whichever version is shown; any other ``state_version`` is 400
    ``parameter_invalid``. Create and PATCH answer the draft version.
    Create: ``name`` required (422 ``parameter_invalid`` "Name can't be blank" when missing or
    blank); ``state`` is not accepted on create (ignored: a connector is always created in
    draft); defaults: ``description`` "", ``http_method`` ``get``, ``url`` "", ``body`` null,
    ``direct_fin_usage``/``customer_authentication``/``bypass_authentication``/
    ``validate_missing_attributes`` false, ``audiences`` ``[]``, ``headers``/``data_inputs``/
    ``token_ids`` ``[]``, ``mock_response`` null. Validation errors are 422 ``parameter_invalid``
    naming the ``field``, with Intercom's messages where it documents them ("Invalid audiences.
    Must be a subset of: leads, users, visitors", "Http Method isn't an option", "Invalid
    state") and messages in the same style otherwise. A non-object body is 400 ``bad_request``.
    ``url``, when not empty, must be an absolute http(s) URL (templates allowed anywhere).
    ``data_inputs`` items need ``name`` and ``description`` (non-blank), ``type`` one of
    ``string|integer|decimal|boolean`` (default ``string``), ``required`` a boolean (default
    false), ``default_value`` a string or null; sending the list replaces every input.
    ``headers`` items are ``{name, value}`` strings; values are stored as sent (used when
    executing) and always answered as ``"****"``. ``mock_response`` must be an object (or
    null); it sets ``response_fields`` (one per leaf: ``path`` with ``.`` between keys and
    ``[]`` after an array, whose first element stands for all; ``type`` string, integer,
    decimal, boolean or null; ``example_value`` the leaf as a string; ``redacted`` false) and
    ``configuration_response_type: "mock_response_type"`` (null without a mock).
    ``execution_type`` is always ``server_side``, ``data_transformation_type`` ``full_access``,
    ``object_mappings`` ``[]``, ``client_function_*`` null.
    The list answers the lighter ``data_connector`` object (no headers, inputs, body, response
    fields or auth flags) of the live version (or the draft, as above).

"In use"
    A connector that was executed (by ``execute``) within the last ``in_use_seconds`` (300 by
    default; ``DataConnectorStore.in_use_seconds``) is in use: Fin may be in the middle of a
    conversation that relies on it. Then ``state: "draft"`` and DELETE are 409
    ``data_connector_in_use``. Otherwise DELETE of a connector that is not a draft is 409
    ``conflict``. DELETE answers ``{"id", "object": "data_connector", "deleted": true}`` and
    removes the connector's execution results.

Paging
    Cursor style: ``{"type": "list", "data": [...], "pages": {"type": "pages", "per_page": n,
    "next": {"starting_after": "<cursor>"} | null}}``. The cursor is opaque (it encodes the
    last item's update time and id, so it stays valid when items change meanwhile); a malformed
    one, or ``per_page`` outside its range, is 400 ``parameter_invalid``. Connectors: most
    recently updated first, ``per_page`` 1 to 50 (default 20). Execution results: most recent
    first, ``per_page`` 1 to 30 (default 10).

Execution results
    ``{"type": "data_connector_execution_result", "id", "data_connector_id", "success",
    "http_status", "error_type", "error_message", "execution_time_ms", "source_type",
    "source_id", "conversation_id", "request_url", "created_at"}`` plus ``request_body`` and
    ``response_body`` with ``include_bodies=true`` (always on the single-result GET).
    ``start_ts``/``end_ts`` are Unix seconds, both inclusive (a result counts in the second it
    was recorded in); the default window is the last hour (``end_ts`` now, ``start_ts`` an hour
    before ``end_ts``). ``success`` and ``include_bodies`` take ``true``/``false``. A result of
    another connector, or none, is 404 ``not_found``; an unknown connector is 404
    ``data_connector_not_found``.

Executing (``execute``)
    Only the live version is executed (a never-published connector records a
    ``request_configuration_error``). ``{{name}}`` templates in the URL (values URL-encoded),
    headers and body (values as given) are filled from ``values``, then from each input's
    ``default_value``; a missing required input is a ``request_configuration_error`` and
    nothing is sent; a template naming nothing known becomes empty. The call uses httpx, does
    not follow redirects, with a timeout (10 s by default). A network failure or timeout is a
    ``faraday_error`` (Intercom's name for its HTTP client's errors), a non-2xx answer a
    ``3rd_party_error``, a 2xx answer that is not JSON while the connector maps response
    fields a ``response_mapping_error``. ``request_url`` is recorded with secrets redacted
    (``****``): the user-info, query values whose name looks secret (token, key, secret,
    password, auth, signature, code) and any configured header value (its
    words of 8 characters or more outside templates) found in it. Bodies are
    kept up to 64 KiB each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request

from findesk.emulator.content_api import ApiError, json_object
from findesk.emulator.data_connectors_store import (
    Connector,
    DataConnectorStore,
    Execution,
    InUse,
    NotDraft,
)

VERSIONS = frozenset({"2.16", "Preview", "Unstable"})
HTTP_METHODS = ("get", "post", "put", "delete", "patch")
AUDIENCES = ("leads", "users", "visitors")
STATES = ("draft", "live")
INPUT_TYPES = ("string", "integer", "decimal", "boolean")
BOOLEAN_FIELDS = (
    "direct_fin_usage",
    "customer_authentication",
    "bypass_authentication",
    "validate_missing_attributes",
)
REDACTED = "****"
MAX_BODY = 64 * 1024
SECRET_QUERY = re.compile(r"token|key|secret|password|passwd|auth|signature|code", re.I)
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
DEFAULTS: dict[str, Any] = {
    "description": "",
    "http_method": "get",
    "url": "",
    "body": None,
    "direct_fin_usage": False,
    "customer_authentication": False,
    "bypass_authentication": False,
    "validate_missing_attributes": False,
    "audiences": [],
    "headers": [],
    "data_inputs": [],
    "token_ids": [],
    "mock_response": None,
}


# --- validation -------------------------------------------------------------------------------


def _invalid(message: str, field: str) -> ApiError:
    return ApiError(422, "parameter_invalid", message, field)


def _validate(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The configuration fields sent in ``body``, checked (only those sent)."""
    fields: dict[str, Any] = {}
    if creating or "name" in body:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("Name can't be blank", "name")
        fields["name"] = name
    for field in ("description", "url"):
        if field in body:
            value = body[field]
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise _invalid(f"{field.capitalize()} must be a string", field)
            fields[field] = value
    if fields.get("url"):
        parts = urlsplit(fields["url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _invalid("Url must be an absolute http(s) URL", "url")
    if "body" in body:
        if body["body"] is not None and not isinstance(body["body"], str):
            raise _invalid("Body must be a string", "body")
        fields["body"] = body["body"]
    if "http_method" in body:
        method = body["http_method"]
        if not isinstance(method, str) or method.lower() not in HTTP_METHODS:
            raise _invalid("Http Method isn't an option", "http_method")
        fields["http_method"] = method.lower()
    for field in BOOLEAN_FIELDS:
        if field in body:
            if not isinstance(body[field], bool):
                raise _invalid(f"{field} must be true or false", field)
            fields[field] = body[field]
    if "audiences" in body:
        audiences = body["audiences"]
        if not isinstance(audiences, list) or not all(a in AUDIENCES for a in audiences):
            raise _invalid(
                "Invalid audiences. Must be a subset of: leads, users, visitors", "audiences"
            )
        fields["audiences"] = list(dict.fromkeys(audiences))
    if "headers" in body:
        fields["headers"] = _headers(body["headers"])
    if "data_inputs" in body:
        fields["data_inputs"] = _data_inputs(body["data_inputs"])
    if "token_ids" in body:
        tokens = body["token_ids"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise _invalid("Token ids must be a list of strings", "token_ids")
        fields["token_ids"] = tokens
    if "mock_response" in body:
        mock = body["mock_response"]
        if mock is not None and not isinstance(mock, dict):
            raise _invalid("Mock response must be a JSON object", "mock_response")
        fields["mock_response"] = mock
    return fields


def _headers(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise _invalid("Headers must be a list of name and value", "headers")
    headers = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not item["name"].strip()
            or not isinstance(item.get("value"), str)
        ):
            raise _invalid("Each header needs a name and a value", "headers")
        headers.append({"name": item["name"], "value": item["value"]})
    return headers


def _data_inputs(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid("Data inputs must be a list", "data_inputs")
    inputs = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            raise _invalid("Each data input must be an object", "data_inputs")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("Data input name can't be blank", "data_inputs")
        if name in seen:
            raise _invalid(f"Data input name {name} is used twice", "data_inputs")
        seen.add(name)
        description = item.get("description")
        if not isinstance(description, str) or not description.strip():
            raise _invalid("Data input description can't be blank", "data_inputs")
        kind = item.get("type", "string")
        if kind not in INPUT_TYPES:
            raise _invalid(
                "Invalid data input type. Must be one of: string, integer, decimal, boolean",
                "data_inputs",
            )
        required = item.get("required", False)
        if not isinstance(required, bool):
            raise _invalid("Data input required must be true or false", "data_inputs")
        default = item.get("default_value")
        if default is not None and not isinstance(default, str):
            raise _invalid("Data input default value must be a string", "data_inputs")
        inputs.append(
            {
                "name": name,
                "type": kind,
                "description": description,
                "required": required,
                "default_value": default,
            }
        )
    return inputs


def response_fields(mock: Any) -> list[dict[str, Any]]:
    """One field per leaf of a sample response (arrays: their first element)."""
    fields: list[dict[str, Any]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            if value:
                walk(value[0], f"{path}[]")
        else:
            if isinstance(value, bool):
                kind, example = "boolean", "true" if value else "false"
            elif isinstance(value, int):
                kind, example = "integer", str(value)
            elif isinstance(value, float):
                kind, example = "decimal", str(value)
            elif value is None:
                kind, example = "null", None
            else:
                kind, example = "string", str(value)
            fields.append({"path": path, "type": kind, "example_value": example, "redacted": False})

    if isinstance(mock, dict):
        walk(mock, "")
    return fields


# --- shapes -----------------------------------------------------------------------------------


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connector_json(connector: Connector, version: str, base_url: str) -> dict[str, Any]:
    """The ``data_connector_detail`` of one version."""
    config = {**DEFAULTS, **connector.version(version)}
    mock = config["mock_response"]
    return {
        "type": "data_connector",
        "id": str(connector.id),
        "name": config["name"],
        "description": config["description"],
        "state": connector.state,
        "url": config["url"],
        "body": config["body"],
        "http_method": config["http_method"],
        "direct_fin_usage": config["direct_fin_usage"],
        "audiences": config["audiences"],
        "execution_type": "server_side",
        "configuration_response_type": None if mock is None else "mock_response_type",
        "data_transformation_type": "full_access",
        "client_function_name": None,
        "client_function_timeout_ms": None,
        "headers": [{"name": h["name"], "value": REDACTED} for h in config["headers"]],
        "data_inputs": config["data_inputs"],
        "response_fields": response_fields(mock),
        "object_mappings": [],
        "token_ids": config["token_ids"],
        "customer_authentication": config["customer_authentication"],
        "bypass_authentication": config["bypass_authentication"],
        "validate_missing_attributes": config["validate_missing_attributes"],
        "created_by_admin_id": connector.created_by_admin_id,
        "updated_by_admin_id": connector.updated_by_admin_id,
        "created_at": iso(connector.created_ms),
        "updated_at": iso(connector.updated_ms),
        "execution_results_url": (f"{base_url}/data_connectors/{connector.id}/execution_results"),
    }


def connector_summary_json(connector: Connector) -> dict[str, Any]:
    """The lighter ``data_connector`` of the list."""
    config = {**DEFAULTS, **connector.version("live")}
    return {
        "type": "data_connector",
        "id": str(connector.id),
        "name": config["name"],
        "description": config["description"],
        "state": connector.state,
        "http_method": config["http_method"],
        "url": config["url"],
        "direct_fin_usage": config["direct_fin_usage"],
        "audiences": config["audiences"],
        "created_at": iso(connector.created_ms),
        "updated_at": iso(connector.updated_ms),
    }


def execution_json(execution: Execution, *, bodies: bool) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "type": "data_connector_execution_result",
        "id": str(execution.id),
        "data_connector_id": str(execution.connector_id),
        "success": execution.success,
        "http_status": execution.http_status,
        "error_type": execution.error_type,
        "error_message": execution.error_message,
        "execution_time_ms": execution.execution_time_ms,
        "source_type": execution.source_type,
        "source_id": execution.source_id,
        "conversation_id": execution.conversation_id,
        "request_url": execution.request_url,
        "created_at": iso(execution.created_ms),
    }
    if bodies:
        shaped["request_body"] = execution.request_body
        shaped["response_body"] = execution.response_body
    return shaped


def _cursor(ms: int, item_id: int) -> str:
    return base64.urlsafe_b64encode(f"{ms}:{item_id}".encode()).decode().rstrip("=")


def _parse_cursor(raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        ms, item_id = text.split(":")
        return int(ms), int(item_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            400, "parameter_invalid", "starting_after is not a valid cursor", "starting_after"
        ) from None


def _page(data: list[Any], per_page: int, next_cursor: str | None) -> dict[str, Any]:
    return {
        "type": "list",
        "data": data,
        "pages": {
            "type": "pages",
            "per_page": per_page,
            "next": None if next_cursor is None else {"starting_after": next_cursor},
        },
    }


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.strip()
    if not value.lstrip("-").isdigit() or not value.isascii() or not low <= int(value) <= high:
        raise ApiError(
            400, "parameter_invalid", f"{name} must be an integer from {low} to {high}", name
        )
    return int(value)


def _query_bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise ApiError(400, "parameter_invalid", f"{name} must be true or false", name)
    return raw.lower() == "true"


def _admin_id(request: Request) -> str:
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return str(int(hashlib.sha256(token.encode()).hexdigest()[:8], 16) % 10_000_000)


def _not_found() -> ApiError:
    return ApiError(404, "data_connector_not_found", "Data connector not found")


# --- the routes -------------------------------------------------------------------------------


def connectors_store_of(app: FastAPI) -> DataConnectorStore:
    """The store behind an app made by ``create_content_api`` (for the answerer and tests)."""
    store: DataConnectorStore = app.state.data_connector_store
    return store


def include_data_connectors(app: FastAPI, store: DataConnectorStore) -> None:
    """Serve the Data Connectors API on ``app`` (made by ``create_content_api``)."""
    app.state.data_connector_store = store

    def versioned(request: Request) -> None:
        version = getattr(request.state, "intercom_version", None)
        if version not in VERSIONS:
            raise ApiError(
                404,
                "not_found",
                f"Data connectors are not available in Intercom-Version {version}; "
                "use 2.16 or Preview",
            )

    router = APIRouter(dependencies=[Depends(versioned)])

    def found(connector_id: str) -> Connector:
        if not connector_id.isascii() or not connector_id.isdigit() or len(connector_id) > 18:
            raise _not_found()
        connector = store.get(int(connector_id))
        if connector is None:
            raise _not_found()
        return connector

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @router.get("/data_connectors")
    def list_connectors(request: Request) -> Any:
        per_page = _query_int(request, "per_page", 20, 1, 50)
        after = _parse_cursor(request.query_params.get("starting_after"))
        rows = store.page(after, per_page + 1)
        more = len(rows) > per_page
        rows = rows[:per_page]
        next_cursor = _cursor(rows[-1].updated_ms, rows[-1].id) if more else None
        return _page([connector_summary_json(c) for c in rows], per_page, next_cursor)

    @router.post("/data_connectors", status_code=201)
    def create_connector(request: Request, body: dict[str, Any] = Depends(json_object)) -> Any:
        fields = _validate(body, creating=True)
        connector = store.create({**DEFAULTS, **fields}, _admin_id(request))
        return connector_json(connector, "draft", base_url(request))

    @router.get("/data_connectors/{connector_id}")
    def get_connector(request: Request, connector_id: str) -> Any:
        version = request.query_params.get("state_version", "live")
        if version not in STATES:
            raise ApiError(
                400,
                "parameter_invalid",
                "state_version must be one of: draft, live",
                "state_version",
            )
        return connector_json(found(connector_id), version, base_url(request))

    @router.patch("/data_connectors/{connector_id}")
    def update_connector(
        request: Request, connector_id: str, body: dict[str, Any] = Depends(json_object)
    ) -> Any:
        current = found(connector_id)
        state = body.get("state")
        if "state" in body and state not in STATES:
            raise _invalid("Invalid state", "state")
        fields = _validate(body, creating=False)
        try:
            updated = store.update(current.id, fields, state, _admin_id(request))
        except InUse:
            raise ApiError(
                409,
                "data_connector_in_use",
                "Data connector is in use and cannot be set to draft",
            ) from None
        if updated is None:
            raise _not_found()
        return connector_json(updated, "draft", base_url(request))

    @router.delete("/data_connectors/{connector_id}")
    def delete_connector(connector_id: str) -> Any:
        current = found(connector_id)
        try:
            deleted = store.delete(current.id)
        except InUse:
            raise ApiError(
                409, "data_connector_in_use", "Data connector is in use and cannot be deleted"
            ) from None
        except NotDraft:
            raise ApiError(
                409, "conflict", "Data connector must be in draft state to be deleted"
            ) from None
        if not deleted:
            raise _not_found()
        return {"id": str(current.id), "object": "data_connector", "deleted": True}

    @router.get("/data_connectors/{data_connector_id}/execution_results")
    def list_executions(request: Request, data_connector_id: str) -> Any:
        connector = found(data_connector_id)
        per_page = _query_int(request, "per_page", 10, 1, 30)
        after = _parse_cursor(request.query_params.get("starting_after"))
        now = store.now_ms() // 1000
        end = _query_int(request, "end_ts", now, 0, 2**53)
        start = _query_int(request, "start_ts", end - 3600, 0, 2**53)
        success = _query_bool(request, "success")
        bodies = bool(_query_bool(request, "include_bodies"))
        error_type = request.query_params.get("error_type") or None
        rows = store.executions(
            connector.id,
            start_ms=start * 1000,
            end_ms=end * 1000 + 999,
            success=success,
            error_type=error_type,
            after=after,
            limit=per_page + 1,
        )
        more = len(rows) > per_page
        rows = rows[:per_page]
        next_cursor = _cursor(rows[-1].created_ms, rows[-1].id) if more else None
        return _page([execution_json(e, bodies=bodies) for e in rows], per_page, next_cursor)

    @router.get("/data_connectors/{data_connector_id}/execution_results/{result_id}")
    def get_execution(data_connector_id: str, result_id: str) -> Any:
        connector = found(data_connector_id)
        execution = None
        if result_id.isascii() and result_id.isdigit() and len(result_id) <= 18:
            execution = store.execution(connector.id, int(result_id))
        if execution is None:
            raise ApiError(404, "not_found", "Execution result not found")
        return execution_json(execution, bodies=True)

    app.include_router(router)


# --- executing a live connector ---------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionResult:
    """One call of a connector, as recorded (``id`` None when the connector was deleted
    meanwhile); ``data`` is the parsed JSON answer when there is one."""

    id: int | None
    connector_id: int
    success: bool
    http_status: int | None
    error_type: str | None
    error_message: str | None
    execution_time_ms: int
    source_type: str
    source_id: str | None
    conversation_id: str | None
    request_url: str
    request_body: str | None
    response_body: str | None
    data: Any = None


class ConnectorNotFound(LookupError):
    pass


def _fill(template: str, values: Mapping[str, str], encode: Callable[[str], str]) -> str:
    return TEMPLATE.sub(lambda m: encode(values.get(m.group(1), "")), template)


def redact_url(url: str, secrets: list[str]) -> str:
    """``url`` with its user-info, secret-looking query values and ``secrets`` masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if SECRET_QUERY.search(k) and v else v) for k, v in pairs], safe="*"
        )
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    for secret in secrets:
        if len(secret) >= 4:
            redacted = redacted.replace(secret, REDACTED).replace(quote(secret, safe=""), REDACTED)
    return redacted


def _truncate(text: str | None) -> str | None:
    if text is None:
        return None
    return text[:MAX_BODY]


def execute(
    store: DataConnectorStore,
    connector_id: int | str,
    values: Mapping[str, str],
    *,
    conversation_id: str | None,
    source_type: str = "fin",
    source_id: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> ExecutionResult:
    """Call the live version of a connector with ``values`` for its inputs, record the
    execution result and return it. Raises ConnectorNotFound for an unknown connector."""
    connector = store.get(int(connector_id))
    if connector is None:
        raise ConnectorNotFound(connector_id)
    started = time.perf_counter()
    config = {**DEFAULTS, **(connector.live or connector.draft)}
    filled: dict[str, str] = {}
    for data_input in config["data_inputs"]:
        given = values.get(data_input["name"])
        if given is None:
            given = data_input.get("default_value")
        if given is not None:
            filled[data_input["name"]] = str(given)
    filled.update({k: str(v) for k, v in values.items() if k not in filled})
    # The configured (non-template) parts of header values: credentials, as a rule.
    header_values = [
        part
        for header in config["headers"]
        for part in TEMPLATE.sub(" ", header["value"]).split()
        if len(part) >= 8
    ]
    url = _fill(config["url"], filled, lambda v: quote(v, safe=""))
    request_url = redact_url(url, header_values)
    body = None if config["body"] is None else _fill(config["body"], filled, lambda v: v)

    def finish(
        success: bool,
        http_status: int | None,
        error_type: str | None,
        error_message: str | None,
        response_body: str | None,
        data: Any = None,
    ) -> ExecutionResult:
        elapsed = int((time.perf_counter() - started) * 1000)
        result: dict[str, Any] = {
            "success": success,
            "http_status": http_status,
            "error_type": error_type,
            "error_message": error_message,
            "execution_time_ms": elapsed,
            "source_type": source_type,
            "source_id": source_id,
            "conversation_id": conversation_id,
            "request_url": request_url,
            "request_body": _truncate(body),
            "response_body": _truncate(response_body),
        }
        recorded = store.record(connector.id, result)
        return ExecutionResult(
            id=None if recorded is None else recorded.id,
            connector_id=connector.id,
            data=data,
            **result,
        )

    if connector.live is None:
        return finish(False, None, "request_configuration_error", "Not live", None)
    missing = [
        i["name"] for i in config["data_inputs"] if i.get("required") and i["name"] not in filled
    ]
    if missing:
        message = f"Missing required data inputs: {', '.join(missing)}"
        return finish(False, None, "request_configuration_error", message, None)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return finish(False, None, "request_configuration_error", "The URL is not valid", None)
    headers = {h["name"]: _fill(h["value"], filled, lambda v: v) for h in config["headers"]}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as client:
            response = client.request(
                config["http_method"].upper(),
                url,
                headers=headers,
                content=None if body is None else body.encode(),
            )
    except httpx.HTTPError as exc:
        return finish(False, None, "faraday_error", f"{type(exc).__name__}: {exc}", None)
    text = response.text
    if not 200 <= response.status_code < 300:
        message = f"The endpoint answered HTTP {response.status_code}"
        return finish(False, response.status_code, "3rd_party_error", message, text)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
        if config["mock_response"] is not None:
            message = "The answer is not JSON"
            return finish(False, response.status_code, "response_mapping_error", message, text)
    return finish(True, response.status_code, None, None, text, data)
