"""Signing agents in to the web inbox: throttled password check, server-side sessions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.auth.models import WebSession
from findesk.auth.passwords import Busy, PasswordChecker
from findesk.kit.db import Database
from findesk.kit.errors import Unauthorized
from findesk.kit.secrets import hash_secret, new_secret
from findesk.kit.timeutil import as_utc, utcnow
from findesk.throttle import service as throttle

IDLE_TIMEOUT = timedelta(hours=12)
ABSOLUTE_TIMEOUT = timedelta(days=7)
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SignedIn:
    session_id: str  # the cookie's value: shown to the browser only
    csrf_token: str
    agent: Agent


async def sign_in(
    db: Database, checker: PasswordChecker, email: str, password: str, address: str
) -> SignedIn:
    """Check an agent's email and password, throttled per account and address (see
    ``findesk.throttle``), and open a session.

    Raises ``TooManyAttempts`` (429) while the attempt must wait, ``Busy`` (503) when the
    password checks are saturated, and ``Unauthorized`` for a wrong email or password."""
    guard = throttle.sign_in_guard(email, address)

    def begin() -> throttle.Attempt:
        with db.transaction() as session:
            return throttle.begin(session, guard)

    def candidate() -> Agent | None:
        with db.read_session() as session:
            return agent_repository.get_by_email(session, email.strip())

    attempt = await run_in_threadpool(begin)
    agent = await run_in_threadpool(candidate)
    try:
        ok = await checker.verify(agent.password_hash if agent else None, password)
    except Busy:
        await run_in_threadpool(_in_transaction, db, throttle.not_judged, attempt)
        raise
    if agent is None or not ok or not agent.active or agent.is_bot:
        await run_in_threadpool(_in_transaction, db, throttle.failed, attempt)
        raise Unauthorized("Wrong email or password.", error=None)
    signed_in_agent = agent

    def open_session() -> SignedIn:
        with db.transaction() as session:
            throttle.succeeded(session, attempt)
            return _open_session(session, signed_in_agent)

    return await run_in_threadpool(open_session)


def _in_transaction(
    db: Database, action: Callable[[Session, throttle.Attempt], None], attempt: throttle.Attempt
) -> None:
    with db.transaction() as session:
        action(session, attempt)


def _open_session(session: Session, agent: Agent) -> SignedIn:
    now = utcnow()
    raw = new_secret("fss")
    csrf = new_secret("csrf")
    session.add(
        WebSession(
            id_hash=hash_secret(raw),
            agent_id=agent.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ABSOLUTE_TIMEOUT,
        )
    )
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    return SignedIn(raw, csrf, agent)


def authenticate(session: Session, raw: str) -> WebSession | None:
    """The live session for a cookie value, or None (unknown, expired, idle too long)."""
    row = session.get(WebSession, hash_secret(raw))
    if row is None or not row.agent.active:
        return None
    now = utcnow()
    if as_utc(row.expires_at) <= now or as_utc(row.last_seen_at) + IDLE_TIMEOUT <= now:
        return None
    return row


def touch_due(row: WebSession) -> bool:
    """Whether the session's idle timeout is due to slide (once a minute, to spare writes)."""
    return as_utc(row.last_seen_at) + _TOUCH_EVERY <= utcnow()


def touch(session: Session, id_hash: str) -> None:
    """Slide the idle timeout, if it is due (``touch_due``)."""
    row = session.get(WebSession, id_hash)
    if row is not None and touch_due(row):
        row.last_seen_at = utcnow()


def sign_out(session: Session, raw: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_hash == hash_secret(raw)))


def sign_out_agent(session: Session, agent_id: str) -> None:
    """End every session of an agent (password changed, agent deactivated)."""
    session.execute(delete(WebSession).where(WebSession.agent_id == agent_id))
