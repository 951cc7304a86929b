"""Who may call the Fin API: a valid OAuth bearer token, and a valid signature when configured."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from fastapi.security import HTTPBearer
from sqlalchemy import Connection
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from findesk.auth import service as auth
from findesk.fin_api import replay
from findesk.fin_api.signing import matching_digest, signed_string
from findesk.kit.errors import Unauthorized
from findesk.kit.http import db_of, settings_of

# Declared for the OpenAPI document only; ``check_call`` and ``authenticate`` do the checking.
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


async def check_call(request: Request, *, changes_state: bool) -> None:
    """What is checked before anything else, on the event loop: a bearer token is given and,
    if a signing secret is configured, the signature matches (accepted once only for a call
    that ``changes_state``: see ``verify_signature``). The token itself is checked in the
    call's own session (``authorized_session``), or by ``confirm_token`` when the call is
    refused before it opens one."""
    request.state.fin_token = bearer_token(request)
    request.state.fin_token_checked = False
    secret = settings_of(request).fin_signing_secret
    if secret is not None:
        await verify_signature(request, secret.get_secret_value(), once=changes_state)


def authenticate(request: Request, connection: Connection) -> None:
    """Check the call's bearer token on ``connection``; remember whose it is (the ledger's
    client)."""
    request.state.fin_token_checked = True
    token = request.state.fin_token
    request.state.fin_client_id = auth.authenticate_access_token(connection, token)


@contextmanager
def authorized_session(request: Request, *, write: bool) -> Iterator[Session]:
    """The call's one session and transaction, its token checked first: a read session, or a
    write transaction that commits when the block ends without error."""
    db = db_of(request)
    with db.transaction() if write else db.read_session() as session:
        authenticate(request, session.connection())
        yield session


@contextmanager
def authorized_reader(request: Request) -> Iterator[Connection]:
    """The call's one read transaction on a Core connection, its token checked first: for the
    reads that build no ORM object (get_conversation, get_messages)."""
    with db_of(request).read_connection() as connection:
        authenticate(request, connection)
        yield connection


async def confirm_token(request: Request) -> None:
    """Check the token of a call refused before its session was opened (a body that is not
    valid, say): without a valid token, the answer is 401 and nothing else."""
    if getattr(request.state, "fin_token_checked", True):
        return  # no token was found, or it was checked already

    def check() -> None:
        with db_of(request).read_connection() as connection:
            authenticate(request, connection)

    await run_in_threadpool(check)


async def verify_signature(request: Request, secret: str, *, once: bool = True) -> None:
    """The signature must match the call in the configured scheme (see ``fin_api.signing``);
    with ``once``, it must not have been used before: it is accepted once, by whichever process
    sees it first. Reads are not held to that: a replayed read changes nothing, and Fin may read
    the same thing twice within a second, which makes the same signature."""
    timestamp = request.headers.get("x-fin-request-timestamp", "")
    signature = request.headers.get("x-fin-signature", "")
    if not timestamp or not signature:
        raise Unauthorized("The request is not signed.", error="invalid_request")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthorized("X-Fin-Request-Timestamp is not a Unix time.") from None
    settings = settings_of(request)
    tolerance = settings.fin_signature_tolerance_seconds
    if abs(time.time() - sent_at) > tolerance:
        raise Unauthorized("The request signature has expired.")
    message = signed_string(
        settings.fin_signature_scheme,
        timestamp,
        request.method,
        # Percent-decoded, with the prefix of any mount or ``--root-path``: the URL's path.
        request.scope["path"],
        request.scope.get("query_string", b"").decode("latin-1"),
        await request.body(),
    )
    digest = matching_digest(secret, message, signature)
    if digest is None:
        raise Unauthorized("The request signature does not match.")
    if not once:
        return
    db = db_of(request)
    expires_at = replay.expiry(sent_at, tolerance)
    if not await run_in_threadpool(replay.remember, db, digest, expires_at):
        raise Unauthorized("This signed request was already used.")
