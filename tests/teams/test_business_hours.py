"""The business-hours calendar: open/closed, next opening, open seconds and deadlines, across
DST changes, holidays and midnight."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from findesk.teams.hours import ALWAYS, BusinessHours, deadline, elapsed, is_open, next_open

HOUR = 3600.0
WEEKDAYS_9_TO_5 = {day: ((time(9), time(17)),) for day in range(5)}


def local(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc]


def every_day(*intervals: tuple[time, time], zone: str = "Europe/Paris") -> BusinessHours:
    return BusinessHours(timezone=zone, weekly={day: intervals for day in range(7)})


# --- DST: spring forward and fall back, Paris and New York ---------------------------------

DST_DAYS = [
    ("Europe/Paris", date(2026, 3, 29)),  # 02:00 -> 03:00
    ("Europe/Paris", date(2026, 10, 25)),  # 03:00 -> 02:00
    ("America/New_York", date(2026, 3, 8)),  # 02:00 -> 03:00
    ("America/New_York", date(2026, 11, 1)),  # 02:00 -> 01:00
]


@pytest.mark.parametrize(("zone", "day"), DST_DAYS)
def test_a_nine_to_five_day_is_eight_hours_on_the_days_clocks_change(zone: str, day: date) -> None:
    hours = every_day((time(9), time(17)), zone=zone)
    start = local(zone, day.year, day.month, day.day)
    assert elapsed(hours, start, start + timedelta(days=1)) == 8 * HOUR
    assert is_open(hours, local(zone, day.year, day.month, day.day, 9))
    assert not is_open(hours, local(zone, day.year, day.month, day.day, 17))
    assert next_open(hours, start) == local(zone, day.year, day.month, day.day, 9)
    assert deadline(hours, start, 8 * HOUR) == local(zone, day.year, day.month, day.day, 17)


@pytest.mark.parametrize(
    ("zone", "day", "real_hours"),
    [(z, d, 2.0 if d.month == 3 else 4.0) for z, d in DST_DAYS],
)
def test_an_interval_spanning_the_changed_hour_is_the_real_elapsed_time(
    zone: str, day: date, real_hours: float
) -> None:
    hours = every_day((time(1), time(4)), zone=zone)
    start = local(zone, day.year, day.month, day.day)
    assert elapsed(hours, start, start + timedelta(days=1)) == real_hours * HOUR
    end = deadline(hours, start, real_hours * HOUR)
    assert end == local(zone, day.year, day.month, day.day, 4)


def test_a_nonexistent_local_time_moves_forward_to_when_the_clocks_changed() -> None:
    # Paris, 2026-03-29: 02:30 never happens; the day opens at 03:00 CEST (01:00 UTC).
    hours = every_day((time(2, 30), time(4)))
    midnight = local("Europe/Paris", 2026, 3, 29)
    assert next_open(hours, midnight) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert elapsed(hours, midnight, midnight + timedelta(days=1)) == 1 * HOUR
    # An interval entirely inside the skipped hour is never open that day.
    skipped = every_day((time(2, 10), time(2, 50)))
    assert elapsed(skipped, midnight, midnight + timedelta(days=1)) == 0
    assert next_open(skipped, midnight) == local("Europe/Paris", 2026, 3, 30, 2, 10)


def test_an_ambiguous_local_time_is_its_first_occurrence() -> None:
    # New York, 2026-11-01: 01:30 happens twice; the first is 05:30 UTC (EDT).
    hours = every_day((time(1, 30), time(3)), zone="America/New_York")
    midnight = local("America/New_York", 2026, 11, 1)
    assert next_open(hours, midnight) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    # 01:30 EDT .. 03:00 EST is two and a half real hours.
    assert elapsed(hours, midnight, midnight + timedelta(days=1)) == 2.5 * HOUR
    assert is_open(hours, local("America/New_York", 2026, 11, 1, 1, 15, fold=1))


# --- Holidays, weekends, midnight ---------------------------------------------------------


def test_holidays_are_closed_all_day_and_next_open_skips_them() -> None:
    hours = BusinessHours("Europe/Paris", WEEKDAYS_9_TO_5, frozenset({date(2026, 12, 25)}))
    christmas_morning = local("Europe/Paris", 2026, 12, 25, 10)  # a Friday
    assert not is_open(hours, christmas_morning)
    assert next_open(hours, christmas_morning) == local("Europe/Paris", 2026, 12, 28, 9)
    week = local("Europe/Paris", 2026, 12, 21)
    assert elapsed(hours, week, week + timedelta(days=7)) == 4 * 8 * HOUR
    # Four hours before the holiday weekend's close run on into Monday after it.
    thursday_4pm = local("Europe/Paris", 2026, 12, 24, 16)
    assert deadline(hours, thursday_4pm, 2 * HOUR) == local("Europe/Paris", 2026, 12, 28, 10)


def test_closed_at_the_weekend_and_opens_monday() -> None:
    hours = BusinessHours("America/New_York", WEEKDAYS_9_TO_5)
    saturday = local("America/New_York", 2026, 6, 6, 12)
    assert not is_open(hours, saturday)
    assert next_open(hours, saturday) == local("America/New_York", 2026, 6, 8, 9)
    assert elapsed(hours, saturday, local("America/New_York", 2026, 6, 8, 9, 30)) == 1800


def test_intervals_ending_at_midnight_join_the_next_days_opening() -> None:
    # Friday 22:00 - midnight, Saturday 00:00 - 02:00: one four-hour stretch.
    hours = BusinessHours("Europe/Paris", {4: ((time(22), time(0)),), 5: ((time(0), time(2)),)})
    friday = local("Europe/Paris", 2026, 6, 5, 22)
    assert is_open(hours, local("Europe/Paris", 2026, 6, 5, 23, 59))
    assert is_open(hours, local("Europe/Paris", 2026, 6, 6, 0))
    assert not is_open(hours, local("Europe/Paris", 2026, 6, 6, 2))
    assert elapsed(hours, friday - timedelta(hours=1), friday + timedelta(hours=6)) == 4 * HOUR
    assert deadline(hours, friday, 3 * HOUR) == local("Europe/Paris", 2026, 6, 6, 1)


def test_an_overnight_interval_runs_into_the_next_day_even_a_holiday() -> None:
    hours = BusinessHours(
        "Europe/Paris", {0: ((time(22), time(6)),)}, frozenset({date(2026, 6, 9)})
    )
    assert is_open(hours, local("Europe/Paris", 2026, 6, 9, 5))  # Tuesday, from Monday night
    monday = local("Europe/Paris", 2026, 6, 8)
    assert elapsed(hours, monday, monday + timedelta(days=7)) == 8 * HOUR
    assert next_open(hours, local("Europe/Paris", 2026, 6, 9, 7)) == local(
        "Europe/Paris", 2026, 6, 15, 22
    )


def test_overlapping_intervals_count_once() -> None:
    hours = every_day((time(9), time(13)), (time(11), time(15)))
    day = local("Europe/Paris", 2026, 6, 8)
    assert elapsed(hours, day, day + timedelta(days=1)) == 6 * HOUR
    assert deadline(hours, day, 5 * HOUR) == local("Europe/Paris", 2026, 6, 8, 14)


# --- Edges --------------------------------------------------------------------------------


def test_a_calendar_that_never_opens() -> None:
    never = BusinessHours("Europe/Paris", {})
    at = datetime(2026, 6, 1, tzinfo=UTC)
    assert not is_open(never, at)
    assert next_open(never, at) is None
    assert elapsed(never, at, at + timedelta(days=400)) == 0
    with pytest.raises(ValueError, match="never opens"):
        deadline(never, at, 1)


def test_zero_negative_and_naive_inputs() -> None:
    hours = BusinessHours("Europe/Paris", WEEKDAYS_9_TO_5)
    at = datetime(2026, 6, 6, tzinfo=UTC)  # Saturday: closed
    assert deadline(hours, at, 0) == at
    assert elapsed(hours, at, at - timedelta(days=3)) == 0
    with pytest.raises(ValueError):
        deadline(hours, at, -1)
    with pytest.raises(ValueError):
        is_open(hours, datetime(2026, 6, 6))


def test_results_are_utc_whatever_zone_came_in() -> None:
    hours = BusinessHours("Europe/Paris", WEEKDAYS_9_TO_5)
    at = datetime(2026, 6, 6, 12, tzinfo=ZoneInfo("Asia/Tokyo"))
    opens = next_open(hours, at)
    assert opens is not None and opens.tzinfo is UTC
    assert deadline(hours, at, 60).tzinfo is UTC


def test_long_spans_are_fast() -> None:
    hours = BusinessHours("Europe/Paris", WEEKDAYS_9_TO_5, frozenset({date(2026, 5, 1)}))
    start = local("Europe/Paris", 2026, 1, 1)
    end = local("Europe/Paris", 2027, 1, 1)
    began = clock.perf_counter()
    total = elapsed(hours, start, end)
    assert deadline(hours, start, total) <= end
    assert clock.perf_counter() - began < 0.5
    assert total == (261 - 1) * 8 * HOUR  # 261 weekdays in 2026, one of them a holiday


# --- Properties ---------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
minutes = st.integers(min_value=0, max_value=24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessHours:
    weekly = draw(
        st.dictionaries(
            st.integers(min_value=0, max_value=6),
            st.lists(st.tuples(minutes, minutes), min_size=1, max_size=3).map(tuple),
            min_size=1,
            max_size=7,
        )
    )
    holidays = draw(
        st.frozensets(st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)))
    )
    return BusinessHours(draw(st.sampled_from(ZONES)), weekly, holidays)


@settings(max_examples=300, deadline=None)
@given(hours=calendars(), start=instants, seconds=st.floats(min_value=0, max_value=90 * 86400))
def test_elapsed_until_the_deadline_is_the_seconds_asked(
    hours: BusinessHours, start: datetime, seconds: float
) -> None:
    end = deadline(hours, start, seconds)
    assert end >= start
    assert abs(elapsed(hours, start, end) - seconds) <= 1e-6


@settings(max_examples=300, deadline=None)
@given(hours=calendars(), points=st.lists(instants, min_size=3, max_size=3))
def test_elapsed_adds_up_over_a_split_point(hours: BusinessHours, points: list[datetime]) -> None:
    a, b, c = sorted(points)
    assert elapsed(hours, a, c) == pytest.approx(
        elapsed(hours, a, b) + elapsed(hours, b, c), abs=1e-6
    )
    assert elapsed(hours, a, c) <= (c - a).total_seconds()


@settings(max_examples=300, deadline=None)
@given(hours=calendars(), at=instants)
def test_next_open_agrees_with_is_open(hours: BusinessHours, at: datetime) -> None:
    opens = next_open(hours, at)
    assert (opens == at) == is_open(hours, at)
    if opens is not None:
        assert is_open(hours, opens)
        assert elapsed(hours, at, opens) == 0


@given(a=instants, b=instants)
def test_always_is_wall_clock_seconds(a: datetime, b: datetime) -> None:
    assert elapsed(ALWAYS, a, b) == max(0.0, (b - a).total_seconds())
    assert is_open(ALWAYS, a) and next_open(ALWAYS, a) == a
    if b >= a:
        assert deadline(ALWAYS, a, (b - a).total_seconds()) == b
