"""Who may call the Fin API: a valid OAuth bearer token, and a valid signature when configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from findesk.auth import service as auth
from findesk.auth.models import OAuthClient
from findesk.kit.errors import Unauthorized
from findesk.kit.http import db_of, settings_of

# Declared for the OpenAPI document only; ``authorize`` does the checking.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerAuth",
    description="OAuth 2.0 access token from `POST /oauth/token` (client credentials).",
)


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("A bearer token is required.", error=None)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "The Authorization header must be 'Bearer <token>'.", error="invalid_request"
        )
    return token.strip()


async def authorize(request: Request) -> OAuthClient:
    """Check the bearer token, then the request signature if a signing secret is configured."""
    token = bearer_token(request)
    db = db_of(request)

    def lookup() -> OAuthClient:
        with db.read_session() as session:
            return auth.authenticate_access_token(session, token)

    client = await run_in_threadpool(lookup)
    secret = settings_of(request).fin_signing_secret
    if secret is not None:
        await verify_signature(request, secret.get_secret_value())
    return client


async def verify_signature(request: Request, secret: str) -> None:
    timestamp = request.headers.get("x-fin-request-timestamp", "")
    signature = request.headers.get("x-fin-signature", "")
    if not timestamp or not signature:
        raise Unauthorized("The request is not signed.", error="invalid_request")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthorized("X-Fin-Request-Timestamp is not a Unix time.") from None
    tolerance = settings_of(request).fin_signature_tolerance_seconds
    if abs(time.time() - sent_at) > tolerance:
        raise Unauthorized("The request signature has expired.")
    if request.method == "GET":
        payload = canonical_query(request.url.query).encode()
    else:
        payload = await request.body()
    if not signature_matches(secret, timestamp, payload, signature):
        raise Unauthorized("The request signature does not match.")


def canonical_query(query: str) -> str:
    """Query parameters sorted by name, as ``k=v`` joined by ``&`` (our decision, spec 5)."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{key}={value}" for key, value in pairs)


def sign(secret: str, timestamp: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), timestamp.encode() + b":" + payload, hashlib.sha256).digest()


def signature_matches(secret: str, timestamp: str, payload: bytes, signature: str) -> bool:
    """Accept a hex or base64 digest, with or without a ``sha256=`` prefix."""
    given = signature.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    digest = sign(secret, timestamp, payload)
    given_bytes = given.encode()
    # Evaluate every form (no short circuit) so timing does not tell which one was close.
    hex_ok = hmac.compare_digest(digest.hex().encode(), given.lower().encode())
    b64_ok = hmac.compare_digest(base64.b64encode(digest), given_bytes)
    b64url_ok = hmac.compare_digest(base64.urlsafe_b64encode(digest), given_bytes)
    return hex_ok | b64_ok | b64url_ok
