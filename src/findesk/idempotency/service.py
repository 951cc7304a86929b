"""Idempotency keys, as payment APIs have them: a client that retries a POST with the key it
sent the first time gets the first answer again, and nothing is done twice.

A key belongs to the agent who sent it. It is claimed (a row inserted) at the start of the
request's transaction and the response is written into that row before the same transaction
commits: after a crash either the change and its key are both kept or neither is. A second
request with the key waits for the first (on the row's unique key) and then answers from it.
A request that fails keeps no key: retrying it runs it again. Keys expire after a day.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from findesk.idempotency import repository
from findesk.idempotency.models import IdempotencyKey
from findesk.kit.errors import Problem
from findesk.kit.periodic import Every
from findesk.kit.timeutil import as_utc, utcnow

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
LIFETIME = timedelta(hours=24)
# The response headers a replay repeats (others, such as Date, belong to each response).
KEPT_HEADERS = ("content-type", "location")
PRUNE_EVERY_SECONDS = 600.0


class InvalidKey(Problem):
    status = 400
    code = "invalid_idempotency_key"


class KeyReused(Problem):
    status = 422
    code = "idempotency_key_reused"


class KeyInUse(Problem):
    status = 409
    code = "idempotency_key_in_use"


@dataclass(frozen=True, slots=True)
class Call:
    """A request that carries a key: who sent it, and what "the same request" means."""

    agent_id: str
    key: str
    method: str
    path: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str]


def checked_key(raw: str) -> str:
    """The key as sent: 1 to 255 printable ASCII characters, not only spaces."""
    if not raw.strip() or len(raw) > MAX_KEY_LENGTH or not raw.isascii() or not raw.isprintable():
        raise InvalidKey(
            f"{KEY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
            "(a UUID, say), and not only spaces."
        )
    return raw


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 of the request: the same JSON written with other spacing or key order is the
    same request."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def claim(session: Session, call: Call, now: datetime | None = None) -> StoredResponse | None:
    """At the start of the request's transaction: the stored response if this key already
    answered this request (None otherwise, the key then being this transaction's)."""
    now = now or utcnow()
    row = repository.get(session, call.agent_id, call.key)
    if row is not None and as_utc(row.created_at) <= now - LIFETIME:
        repository.remove(session, row)  # expired: the key is new again
        session.flush()
        row = None
    if row is None:
        try:
            with session.begin_nested():
                repository.add(
                    session,
                    IdempotencyKey(
                        agent_id=call.agent_id,
                        key=call.key,
                        fingerprint=call.fingerprint,
                        method=call.method,
                        path=call.path,
                        response_headers={},
                        created_at=now,
                    ),
                )
                session.flush()
            return None
        except IntegrityError:
            # Another request with this key committed while we waited on the key's row.
            row = repository.get(session, call.agent_id, call.key)
            if row is None:
                raise KeyInUse(
                    f"A request with this {KEY_HEADER} is being processed; retry shortly."
                ) from None
    return _answer(row, call)


def _answer(row: IdempotencyKey, call: Call) -> StoredResponse:
    if row.fingerprint != call.fingerprint:
        raise KeyReused(
            f"This {KEY_HEADER} was used less than {LIFETIME.total_seconds() / 3600:.0f} hours "
            f"ago for another request ({row.method} {row.path}, or another body). Send a new "
            "key with each new request; repeat a key only to retry the very same request."
        )
    if row.response_status is None:  # never committed so; kept for safety
        raise KeyInUse(f"A request with this {KEY_HEADER} is being processed; retry shortly.")
    return StoredResponse(
        row.response_status, (row.response_body or "").encode(), dict(row.response_headers)
    )


def remember_response(
    session: Session, call: Call, status: int, body: bytes, headers: dict[str, str]
) -> None:
    """Before the request's transaction commits: what it answered, for its retries."""
    row = repository.get(session, call.agent_id, call.key)
    if row is None:
        raise RuntimeError("remember_response without claim")
    row.response_status = status
    row.response_body = body.decode()
    row.response_headers = {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS}


def prune(session: Session, now: datetime | None = None) -> int:
    """Delete expired keys; returns how many."""
    return repository.delete_created_before(session, (now or utcnow()) - LIFETIME)


# Whether this process should prune now (at most every ``PRUNE_EVERY_SECONDS``).
prune_due = Every(PRUNE_EVERY_SECONDS).due
