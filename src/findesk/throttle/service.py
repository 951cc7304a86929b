"""Progressive delays on failed attempts: sign-ins (per account) and token requests (per client).

Each attempt is counted against its *pair* (the account and the address it comes from) and
against *wider* counters (the address across accounts, the account across addresses). A pair
allows a few failures, then each further failure doubles the wait before the next attempt; the
wider counters allow many more, so a team behind one proxy and an owner whose account is under
attack from elsewhere keep working. A pair that succeeded lately is *known*: only its own counter
holds it back, so an attack on an account from other addresses never locks its owner out.

An attempt counts against its pair when it begins (in the transaction that checks the counters,
with their rows locked), so concurrent guesses at one account from one address cannot all slip
through before any failure is written; a success, or an attempt that could not be judged, takes
that count back. The wider counters count failures once they are known: many people behind one
address signing in at once are many attempts in flight, not failures.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from findesk.kit.errors import Problem
from findesk.kit.periodic import Every
from findesk.kit.timeutil import as_utc, utcnow
from findesk.throttle import repository
from findesk.throttle.models import ThrottleCounter

KNOWN_FOR = timedelta(days=30)
prune_due = Every(3600.0).due


@dataclass(frozen=True)
class Policy:
    scope: str
    free: int  # failures before any wait
    first_delay: float  # seconds to wait after the first failure beyond ``free``; then doubled
    max_delay: float  # seconds
    forget_after: timedelta  # a counter quiet for this long starts again from nothing

    def delay(self, failures: int) -> timedelta | None:
        beyond = failures - self.free
        if beyond <= 0:
            return None
        seconds = self.first_delay * 2 ** min(beyond - 1, 32)
        return timedelta(seconds=min(self.max_delay, seconds))


SIGN_IN_PAIR = Policy("sign_in.pair", 3, 1.0, 900.0, timedelta(hours=24))
SIGN_IN_ADDRESS = Policy("sign_in.address", 30, 1.0, 300.0, timedelta(hours=1))
SIGN_IN_ACCOUNT = Policy("sign_in.account", 20, 1.0, 300.0, timedelta(hours=1))
TOKEN_PAIR = Policy("token.pair", 5, 1.0, 300.0, timedelta(hours=1))
TOKEN_ADDRESS = Policy("token.address", 50, 1.0, 300.0, timedelta(hours=1))


class TooManyAttempts(Problem):
    status = 429
    code = "too_many_attempts"


@dataclass(frozen=True)
class Counter:
    policy: Policy
    subject: str

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.policy.scope}\0{self.subject}".encode()).hexdigest()


@dataclass(frozen=True)
class Guard:
    """What one attempt counts against: its pair, and the wider counters."""

    pair: Counter
    wider: tuple[Counter, ...]

    def counters(self) -> dict[str, Counter]:
        return {c.key: c for c in (self.pair, *self.wider)}


def sign_in_guard(email: str, address: str) -> Guard:
    account = email.strip().lower()
    return Guard(
        Counter(SIGN_IN_PAIR, f"{account}\0{address}"),
        (Counter(SIGN_IN_ADDRESS, address), Counter(SIGN_IN_ACCOUNT, account)),
    )


def token_guard(client_id: str, address: str) -> Guard:
    return Guard(Counter(TOKEN_PAIR, f"{client_id}\0{address}"), (Counter(TOKEN_ADDRESS, address),))


@dataclass(frozen=True)
class Attempt:
    guard: Guard
    known: bool  # its pair succeeded lately: the wider counters neither hold it nor count it


def _waiting(row: ThrottleCounter, now: datetime) -> float:
    if row.blocked_until is None:
        return 0.0
    return max(0.0, (as_utc(row.blocked_until) - now).total_seconds())


def begin(session: Session, guard: Guard, now: datetime | None = None) -> Attempt:
    """Let an attempt through, counted against its pair as failed until told otherwise, or
    refuse it (429, with Retry-After) while one of its counters makes it wait."""
    now = now or utcnow()
    if prune_due():
        prune(session, now)
    rows = _lock(session, guard.counters().values(), now)
    pair = rows[guard.pair.key]
    known = pair.last_success_at is not None and as_utc(pair.last_success_at) > now - KNOWN_FOR
    holding = (guard.pair,) if known else (guard.pair, *guard.wider)
    wait = max(_waiting(rows[c.key], now) for c in holding)
    if wait > 0:
        seconds = math.ceil(wait)
        raise TooManyAttempts(
            f"Too many failed attempts. Try again in {_duration(seconds)}.",
            headers={"Retry-After": str(seconds)},
        )
    _count_failure(pair, guard.pair.policy, now)
    return Attempt(guard, known)


def failed(session: Session, attempt: Attempt, now: datetime | None = None) -> None:
    """The attempt was wrong: the wider counters count it too (its pair already has)."""
    if attempt.known:
        return
    now = now or utcnow()
    rows = _lock(session, attempt.guard.wider, now)
    for counter in attempt.guard.wider:
        _count_failure(rows[counter.key], counter.policy, now)


def _count_failure(row: ThrottleCounter, policy: Policy, now: datetime) -> None:
    if row.last_failure_at is not None and as_utc(row.last_failure_at) <= now - policy.forget_after:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = row.updated_at = now
    delay = policy.delay(row.failures)
    row.blocked_until = now + delay if delay else None


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{math.ceil(seconds / 60)} minutes"


def succeeded(session: Session, attempt: Attempt, now: datetime | None = None) -> None:
    """The attempt was right: its pair starts again from nothing and is known from now on."""
    now = now or utcnow()
    pair = _lock(session, (attempt.guard.pair,), now)[attempt.guard.pair.key]
    pair.failures, pair.blocked_until = 0, None
    pair.last_success_at = pair.updated_at = now


def not_judged(session: Session, attempt: Attempt, now: datetime | None = None) -> None:
    """The attempt could not be judged (the server was too busy, say): its pair takes back
    what it counted."""
    now = now or utcnow()
    counter = attempt.guard.pair
    row = _lock(session, (counter,), now)[counter.key]
    row.failures = max(0, row.failures - 1)
    delay = counter.policy.delay(row.failures)
    row.blocked_until = row.last_failure_at + delay if delay and row.last_failure_at else None
    row.updated_at = now


def _lock(
    session: Session, counters: Iterable[Counter], now: datetime
) -> dict[str, ThrottleCounter]:
    return repository.lock_counters(session, {c.key: c.policy.scope for c in counters}, now)


def prune(session: Session, now: datetime | None = None) -> int:
    """Forget counters untouched for longer than any of them matters; returns how many."""
    return repository.delete_untouched_since(
        session, (now or utcnow()) - KNOWN_FOR - timedelta(days=1)
    )


CHAT_ANONYMOUS = Policy("chat.anonymous.address", 0, 0.0, 0.0, timedelta(hours=1))


def take_hourly(
    session: Session, counter: Counter, limit: int, message: str, now: datetime | None = None
) -> None:
    """Count one use against ``counter`` in the current clock hour, or refuse it (429, with
    Retry-After until the hour is over) when ``limit`` uses were counted already. (A plain rate,
    not a failure: the row's ``failures`` are this hour's uses.)"""
    now = now or utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    row = _lock(session, (counter,), now)[counter.key]
    if row.last_failure_at is None or as_utc(row.last_failure_at) < hour:
        row.failures = 0
    if row.failures >= limit:
        seconds = max(1, math.ceil((hour + timedelta(hours=1) - now).total_seconds()))
        raise TooManyAttempts(
            f"{message} Try again in {_duration(seconds)}.", headers={"Retry-After": str(seconds)}
        )
    row.failures += 1
    row.last_failure_at = row.updated_at = now
