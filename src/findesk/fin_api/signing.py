"""Fin's request signatures (spec 5): the string that is signed, the digest, and a signer.

One definition, used by the check in ``fin_api.security`` and by everything that sends signed
Fin API calls (tests, benchmarks, a Fin double), so that both sides cannot drift apart.

The signed string depends on the scheme (``FINDESK_FIN_SIGNATURE_SCHEME``):

``bound`` (the default)
    ``{timestamp}:{METHOD}:{path}:{canonical query}:{raw body}``. ``timestamp`` is the
    ``X-Fin-Request-Timestamp`` header verbatim; ``METHOD`` upper case; ``path`` the URL path
    the client called, percent-decoded, including every prefix findesk is served under (e.g.
    ``/api/fin/user``), without the query; ``canonical query`` as ``canonical_query``; ``raw
    body`` the body's bytes exactly as sent (empty for a GET).
``body`` (the form spec 5 describes; weaker)
    ``{timestamp}:{raw body}``, or for GET ``{timestamp}:{canonical query}``. It binds neither
    method nor path: a signature made for one call is valid on another call with the same
    body (``PUT /conversation`` and ``POST /update_conversation``, say).

The key is the HMAC key; the digest is HMAC-SHA256 of the signed string's bytes (UTF-8).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Generator
from typing import Literal
from urllib.parse import parse_qsl

import httpx

SignatureScheme = Literal["bound", "body"]
TIMESTAMP_HEADER = "X-Fin-Request-Timestamp"
SIGNATURE_HEADER = "X-Fin-Signature"


def canonical_query(query: str) -> str:
    """The query's parameters, form-decoded (``%xx`` and ``+``), blank values kept, sorted by
    name then value, written ``k=v`` (not re-encoded) and joined by ``&`` (our decision,
    spec 5). ``b=2&a=x%20y&a=1`` is ``a=1&a=x y&b=2``."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{key}={value}" for key, value in pairs)


def signed_string(
    scheme: SignatureScheme,
    timestamp: str,
    method: str,
    path: str,
    query: str,
    body: bytes,
) -> bytes:
    """What is signed, in ``scheme``; ``query`` is the raw query string (without ``?``)."""
    if scheme == "body":
        payload = canonical_query(query).encode() if method.upper() == "GET" else body
        return timestamp.encode() + b":" + payload
    head = f"{timestamp}:{method.upper()}:{path}:{canonical_query(query)}:"
    return head.encode() + body


def digest(secret: str, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` keyed with ``secret``: the raw 32 bytes."""
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def matching_digest(secret: str, message: bytes, signature: str) -> bytes | None:
    """The digest of ``message`` if ``signature`` is it, in hex (any case), base64 or base64url,
    with or without a ``sha256=`` prefix; else None. Constant time in what was sent."""
    given = signature.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    expected = digest(secret, message)
    given_bytes = given.encode()
    # Evaluate every form (no short circuit) so timing does not tell which one was close.
    hex_ok = hmac.compare_digest(expected.hex().encode(), given.lower().encode())
    b64_ok = hmac.compare_digest(base64.b64encode(expected), given_bytes)
    b64url_ok = hmac.compare_digest(base64.urlsafe_b64encode(expected), given_bytes)
    return expected if hex_ok | b64_ok | b64url_ok else None


def signature_headers(
    secret: str,
    method: str,
    url: str | httpx.URL,
    body: bytes = b"",
    *,
    scheme: SignatureScheme = "bound",
    timestamp: int | None = None,
) -> dict[str, str]:
    """The two headers that sign a call of ``method`` on the absolute ``url`` with ``body``."""
    target = httpx.URL(url)
    sent_at = str(int(time.time()) if timestamp is None else timestamp)
    message = signed_string(
        scheme, sent_at, method, target.path, target.query.decode("ascii"), body
    )
    return {TIMESTAMP_HEADER: sent_at, SIGNATURE_HEADER: digest(secret, message).hex()}


class FinRequestSigner(httpx.Auth):
    """Signs every request of an ``httpx`` client as Fin does: ``httpx.Client(auth=...)``.

    The bearer token still goes in the client's ``Authorization`` header."""

    requires_request_body = True

    def __init__(self, secret: str, scheme: SignatureScheme = "bound") -> None:
        self.secret = secret
        self.scheme: SignatureScheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(
            signature_headers(
                self.secret, request.method, request.url, request.content, scheme=self.scheme
            )
        )
        yield request
