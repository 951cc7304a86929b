"""Signing agents in to the web inbox: password check, rate limit, server-side sessions."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.auth.models import WebSession
from findesk.auth.passwords import verify_password
from findesk.kit.errors import Problem, Unauthorized
from findesk.kit.secrets import hash_secret, new_secret
from findesk.kit.timeutil import as_utc, utcnow

IDLE_TIMEOUT = timedelta(hours=12)
ABSOLUTE_TIMEOUT = timedelta(days=7)
_TOUCH_EVERY = timedelta(minutes=1)


class TooManyAttempts(Problem):
    status = 429
    code = "too_many_attempts"


class SignInLimiter:
    """At most ``attempts`` failed sign-ins per email and per client address in ``window``
    seconds (a sliding window, kept in memory: per process)."""

    def __init__(self, attempts: int = 5, window: float = 900.0) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                failures = self._recent(key, now)
                if len(failures) >= self.attempts:
                    retry = int(self.window - (now - failures[0])) + 1
                    raise TooManyAttempts(
                        "Too many failed sign-ins. Try again later.",
                        headers={"Retry-After": str(retry)},
                    )

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


@dataclass(frozen=True)
class SignedIn:
    session_id: str  # the cookie's value: shown to the browser only
    csrf_token: str
    agent: Agent


def sign_in(session: Session, email: str, password: str) -> SignedIn:
    agent = agent_repository.get_by_email(session, email.strip())
    ok = verify_password(agent.password_hash if agent else None, password)
    if agent is None or not ok or not agent.active or agent.is_bot:
        raise Unauthorized("Wrong email or password.", error=None)
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


def touch(session: Session, id_hash: str) -> None:
    """Slide the idle timeout (at most once a minute per session, to spare writes)."""
    row = session.get(WebSession, id_hash)
    if row is not None and as_utc(row.last_seen_at) + _TOUCH_EVERY <= utcnow():
        row.last_seen_at = utcnow()


def sign_out(session: Session, raw: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_hash == hash_secret(raw)))


def sign_out_agent(session: Session, agent_id: str) -> None:
    """End every session of an agent (password changed, agent deactivated)."""
    session.execute(delete(WebSession).where(WebSession.agent_id == agent_id))
