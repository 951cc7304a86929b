"""The throttle's rules, on a real database (SQLite and PostgreSQL), with a clock of the test's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from support.server import database_url

from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.throttle import service as throttle
from findesk.throttle.models import ThrottleCounter

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("throttle"))
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self, seconds: float = 0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def fresh_email() -> str:
    return f"owner-{uuid.uuid4().hex[:8]}@example.com"


def attempt(db: Database, guard: throttle.Guard, now: datetime) -> throttle.Attempt:
    with db.transaction() as session:
        return throttle.begin(session, guard, now)


def refused_for(db: Database, guard: throttle.Guard, now: datetime) -> int | None:
    """A wrong guess: the seconds it must wait, or None when it is let through (and counted as
    the failure it is)."""
    try:
        with db.transaction() as session:
            throttle.failed(session, throttle.begin(session, guard, now), now)
    except throttle.TooManyAttempts as exc:
        return int(exc.headers["Retry-After"])
    return None


def succeed(db: Database, tried: throttle.Attempt, now: datetime) -> None:
    with db.transaction() as session:
        throttle.succeeded(session, tried, now)


def test_a_pair_gets_three_free_failures_then_doubling_waits(db: Database) -> None:
    clock, guard = Clock(), throttle.sign_in_guard(fresh_email(), "198.51.100.7")
    for _ in range(3):
        assert refused_for(db, guard, clock()) is None
    assert refused_for(db, guard, clock()) is None  # the 4th is judged, and sets a 1 s wait
    assert refused_for(db, guard, clock()) == 1
    waits = []
    for _ in range(6):
        wait = refused_for(db, guard, clock())
        assert wait is not None
        waits.append(wait)
        clock(wait)
        assert refused_for(db, guard, clock()) is None  # after the wait, one more try
    assert waits == [1, 2, 4, 8, 16, 32]


def test_waits_stop_growing_at_the_cap(db: Database) -> None:
    clock, guard = Clock(), throttle.sign_in_guard(fresh_email(), "198.51.100.8")
    for _ in range(40):
        wait = refused_for(db, guard, clock())
        if wait:
            clock(wait)
    assert refused_for(db, guard, clock()) == 900


def test_a_refused_attempt_does_not_lengthen_the_wait(db: Database) -> None:
    clock, guard = Clock(), throttle.sign_in_guard(fresh_email(), "198.51.100.9")
    for _ in range(6):
        refused_for(db, guard, clock())
    first = refused_for(db, guard, clock())
    assert first is not None
    for _ in range(20):
        assert refused_for(db, guard, clock()) == first


def test_a_quiet_day_forgets_a_pairs_failures(db: Database) -> None:
    clock, guard = Clock(), throttle.sign_in_guard(fresh_email(), "198.51.100.10")
    for _ in range(4):
        refused_for(db, guard, clock())
    assert refused_for(db, guard, clock()) is not None
    clock(24 * 3600 + 1)
    for _ in range(4):  # counting starts again from nothing
        assert refused_for(db, guard, clock()) is None


def test_success_resets_the_pair(db: Database) -> None:
    clock, guard = Clock(), throttle.sign_in_guard(fresh_email(), "198.51.100.11")
    for _ in range(3):
        refused_for(db, guard, clock())
    succeed(db, attempt(db, guard, clock()), clock())
    for _ in range(4):
        assert refused_for(db, guard, clock()) is None


def test_the_owner_keeps_signing_in_while_the_account_is_attacked_from_elsewhere(
    db: Database,
) -> None:
    clock, owner = Clock(), fresh_email()
    home = throttle.sign_in_guard(owner, "203.0.113.1")
    succeed(db, attempt(db, home, clock()), clock())  # the owner signed in from home before
    for n in range(20):  # one guess each from twenty addresses: the account's free failures
        assert refused_for(db, throttle.sign_in_guard(owner, f"192.0.2.{n + 1}"), clock()) is None
    assert refused_for(db, throttle.sign_in_guard(owner, "192.0.2.99"), clock()) is None
    assert refused_for(db, throttle.sign_in_guard(owner, "192.0.2.100"), clock()) == 1
    assert refused_for(db, home, clock()) is None  # a known pair: the account's wait is not its


def test_a_team_behind_one_address_is_not_locked_out_by_one_member(db: Database) -> None:
    clock, office = Clock(), "203.0.113.50"
    colleague = throttle.sign_in_guard(fresh_email(), office)
    succeed(db, attempt(db, colleague, clock()), clock())
    clumsy = throttle.sign_in_guard(fresh_email(), office)
    for _ in range(8):
        wait = refused_for(db, clumsy, clock())
        clock(wait or 0)
    assert refused_for(db, clumsy, clock()) is not None  # the clumsy one waits
    newcomer = throttle.sign_in_guard(fresh_email(), office)
    assert refused_for(db, newcomer, clock()) is None  # nobody else does
    assert refused_for(db, colleague, clock()) is None


def test_spraying_many_accounts_from_one_address_is_slowed(db: Database) -> None:
    clock, address = Clock(), "198.51.100.200"
    known = throttle.sign_in_guard(fresh_email(), address)
    succeed(db, attempt(db, known, clock()), clock())
    for _ in range(31):  # one guess at each of 31 accounts
        assert refused_for(db, throttle.sign_in_guard(fresh_email(), address), clock()) is None
    assert refused_for(db, throttle.sign_in_guard(fresh_email(), address), clock()) == 1
    assert refused_for(db, known, clock()) is None  # someone who signed in from there before


def test_attempts_in_flight_do_not_hold_back_the_wider_counters(db: Database) -> None:
    """Forty people behind one address signing in at once are forty attempts in flight, none of
    them a failure: nobody waits, and once they all succeed the address has its allowance."""
    clock, address = Clock(), "198.51.100.201"
    team = [throttle.sign_in_guard(fresh_email(), address) for _ in range(40)]
    in_flight = [attempt(db, guard, clock()) for guard in team]
    for tried in in_flight:
        succeed(db, tried, clock())
    for _ in range(31):
        assert refused_for(db, throttle.sign_in_guard(fresh_email(), address), clock()) is None
    assert refused_for(db, throttle.sign_in_guard(fresh_email(), address), clock()) == 1


def test_an_attempt_that_was_not_judged_is_taken_back(db: Database) -> None:
    clock, guard = Clock(), throttle.sign_in_guard(fresh_email(), "198.51.100.12")
    for _ in range(10):
        tried = attempt(db, guard, clock())
        with db.transaction() as session:
            throttle.not_judged(session, tried, clock())
    assert refused_for(db, guard, clock()) is None


def test_emails_and_addresses_are_not_stored_in_the_clear(db: Database) -> None:
    email, address = fresh_email(), "198.51.100.13"
    refused_for(db, throttle.sign_in_guard(email, address), Clock()())
    with db.read_session() as session:
        rows = session.scalars(select(ThrottleCounter)).all()
    stored = " ".join(f"{r.key} {r.scope}" for r in rows)
    assert email not in stored and address not in stored


def test_counters_untouched_for_a_month_are_pruned(db: Database) -> None:
    clock = Clock()
    refused_for(db, throttle.sign_in_guard(fresh_email(), "198.51.100.14"), clock())
    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(ThrottleCounter))
        assert throttle.prune(session, clock(10 * 86400)) == 0
        assert throttle.prune(session, clock(30 * 86400)) >= 3
        after = session.scalar(select(func.count()).select_from(ThrottleCounter))
    assert before and after is not None and after <= before - 3


def test_tokens_have_their_own_counters(db: Database) -> None:
    clock, address = Clock(), "198.51.100.15"
    guard = throttle.token_guard("cli_example", address)
    for _ in range(6):
        assert refused_for(db, guard, clock()) is None
    assert refused_for(db, guard, clock()) == 1
    assert refused_for(db, throttle.sign_in_guard(fresh_email(), address), clock()) is None
