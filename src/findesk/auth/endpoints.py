"""``POST /oauth/token`` (client credentials, RFC 6749 §4.4) and ``POST /oauth/revoke`` (RFC 7009).

The body may be form-encoded or JSON (Intercom's token settings default to JSON); the client may
authenticate with HTTP Basic or with ``client_id``/``client_secret`` in the body.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from findesk.auth import service
from findesk.kit.errors import Problem
from findesk.kit.http import client_address, db_of, load_json, settings_of
from findesk.throttle import service as throttle

router = APIRouter(tags=["OAuth 2.0"])

T = TypeVar("T")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenOut(BaseModel):
    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(description="Seconds until the token expires.")


class OAuthErrorOut(BaseModel):
    error: str = Field(examples=["invalid_client"])
    error_description: str


class OAuthError(Exception):
    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        headers = {**NO_STORE, **self.headers}
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="findesk"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string"},
        "client_secret": {"type": "string"},
        "scope": {"type": "string"},
    },
    "required": ["grant_type"],
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthErrorOut, "description": "invalid_request or unsupported_grant_type"},
    401: {"model": OAuthErrorOut, "description": "invalid_client"},
    429: {
        "model": OAuthErrorOut,
        "description": "too_many_attempts: too many failures from this address for this "
        "client; wait as `Retry-After` says.",
    },
    413: {"description": "The body is larger than the limit."},
}


async def _read_params(request: Request, known: frozenset[str]) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            data: Any = load_json(await request.body() or b"{}")
        except Problem as exc:
            raise OAuthError("invalid_request", exc.detail) from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "The body must be a JSON object.")
        params = data
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
        try:
            form = await request.form()
        except Exception:  # malformed multipart and the like
            raise OAuthError("invalid_request", "The body could not be parsed.") from None
        params = {key: value for key, value in form.items() if isinstance(value, str)}
    else:
        raise OAuthError("invalid_request", "Send the parameters form-encoded or as JSON.")
    # RFC 6749 §3.2: unrecognised parameters are ignored, whatever their JSON type.
    params = {key: value for key, value in params.items() if key in known}
    for key, value in params.items():
        if value is not None and not isinstance(value, str):
            raise OAuthError("invalid_request", f"Parameter {key!r} must be a string.")
    return {key: value for key, value in params.items() if value is not None}


TOKEN_PARAMS = frozenset({"grant_type", "client_id", "client_secret", "scope"})
REVOKE_PARAMS = frozenset({"token", "token_type_hint", "client_id", "client_secret"})


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization")
    in_body = "client_id" in params or "client_secret" in params
    if header:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "Use HTTP Basic or body credentials.", 401)
        if in_body:
            raise OAuthError("invalid_request", "Send client credentials one way, not both.")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_client", "Malformed HTTP Basic credentials.", 401) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed HTTP Basic credentials.", 401)
        return unquote(client_id), unquote(secret)
    if "client_id" not in params:
        raise OAuthError("invalid_client", "Client authentication is required.", 401)
    return params["client_id"], params.get("client_secret", "")


def _address(request: Request) -> str:
    return client_address(request) or "unknown"


async def _throttled(run: Callable[[], T | None]) -> T:
    """Run a client's authenticated action; its failures count against the client and address
    (``findesk.throttle``): too many, and it must wait (429)."""
    try:
        result = await run_in_threadpool(run)
    except throttle.TooManyAttempts as exc:
        raise OAuthError("too_many_attempts", exc.detail, 429, exc.headers) from None
    if result is None:
        raise OAuthError("invalid_client", "Unknown client or wrong secret.", 401)
    return result


@router.post(
    "/oauth/token",
    response_model=TokenOut,
    responses=_ERRORS,
    summary="Issue an access token (client credentials grant)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
                "application/json": {"schema": _FORM_SCHEMA},
            },
        }
    },
)
async def token(request: Request) -> JSONResponse:
    try:
        params = await _read_params(request, TOKEN_PARAMS)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "Only client_credentials is supported.")
        client_id, secret = _client_credentials(request, params)
        db, settings = db_of(request), settings_of(request)
        guard = throttle.token_guard(client_id, _address(request))

        def issue() -> tuple[str, int] | None:
            with db.transaction() as session:
                attempt = throttle.begin(session, guard)
                try:
                    issued = service.issue_access_token(
                        session,
                        client_id,
                        secret,
                        settings.token_ttl_seconds,
                        max_live=settings.oauth_max_live_tokens,
                    )
                except service.InvalidClient:
                    throttle.failed(session, attempt)
                    return None
                throttle.succeeded(session, attempt)
                return issued

        issued = await _throttled(issue)
    except OAuthError as exc:
        return exc.response()
    access_token, expires_in = issued
    body = TokenOut(access_token=access_token, token_type="Bearer", expires_in=expires_in)  # noqa: S106
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.post(
    "/oauth/revoke",
    responses={200: {"description": "Revoked (or unknown, per RFC 7009)."}, **_ERRORS},
    summary="Revoke an access token (RFC 7009)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "token": {"type": "string", "minLength": 1},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                        "required": ["token"],
                    }
                }
            },
        }
    },
)
async def revoke(request: Request) -> JSONResponse:
    try:
        params = await _read_params(request, REVOKE_PARAMS)
        client_id, secret = _client_credentials(request, params)
        token_value = params.get("token")
        if not token_value:
            raise OAuthError("invalid_request", "token is required.")
        db = db_of(request)
        guard = throttle.token_guard(client_id, _address(request))

        def run() -> bool | None:
            with db.transaction() as session:
                attempt = throttle.begin(session, guard)
                try:
                    service.check_client(session, client_id, secret)
                except service.InvalidClient:
                    throttle.failed(session, attempt)
                    return None
                throttle.succeeded(session, attempt)
                service.revoke_access_token(session, token_value)
                return True

        await _throttled(run)
    except OAuthError as exc:
        return exc.response()
    return JSONResponse({}, headers=NO_STORE)
