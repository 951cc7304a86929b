"""Business hours: a weekly calendar in a time zone, with holidays, and the arithmetic on it.

Pure (no database, no settings). Every datetime in and out is timezone-aware; results are UTC.

How local wall times become instants (``zoneinfo``):

- an interval belongs to the local date it starts on; a holiday closes the intervals that start
  on it (an overnight interval begun the evening before runs on into the holiday);
- ``end <= start`` means the end is on the next day, so ``time(0)`` as the end is midnight at the
  day's end (and ``(time(0), time(0))`` is the whole day);
- a local time that does not exist (the hour skipped when clocks go forward) moves forward to the
  first instant that exists after it, the moment the clocks changed; a local time that happens
  twice (clocks go back) is its first occurrence.

So a 09:00-17:00 day is 8 hours on the days clocks change too, and an interval that spans the
changed hour lasts the real time that passes.

Arithmetic walks day by day (never second by second); a calendar that has no open second in
three years of days is taken never to open.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEARCH_DAYS = 3 * 366
"""How many days in a row without an open second before a calendar is taken never to open."""

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class BusinessHours:
    timezone: str
    """IANA name, e.g. ``"Europe/Paris"``."""
    weekly: Mapping[int, tuple[tuple[time, time], ...]]
    """0 = Monday .. 6 = Sunday -> open intervals ``[start, end)`` in local wall time."""
    holidays: frozenset[date] = frozenset()
    """Local dates closed all day."""


ALWAYS = BusinessHours(timezone="UTC", weekly={day: ((time(0), time(0)),) for day in range(7)})
"""Open every second: the calendar of a team with no hours set."""


def is_open(hours: BusinessHours, at: datetime) -> bool:
    """Whether ``at`` falls in an open interval."""
    at = _utc(at)
    if _always_open(hours):
        return True
    zone = ZoneInfo(hours.timezone)
    first = at.astimezone(zone).date() - _DAY
    for day in (first, first + _DAY):
        for start, end in _day_pieces(hours, zone, day):
            if start <= at < end:
                return True
    return False


def next_open(hours: BusinessHours, at: datetime) -> datetime | None:
    """``at`` if open then, else the next instant it opens; None if it never opens."""
    at = _utc(at)
    if _always_open(hours):
        return at
    for start, end in _pieces_from(hours, at):
        if end > at:
            return max(start, at)
    return None


def elapsed(hours: BusinessHours, start: datetime, end: datetime) -> float:
    """Open seconds in ``[start, end)``; 0 if ``end <= start``."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return 0.0
    if _always_open(hours):
        return (end - start).total_seconds()
    zone = ZoneInfo(hours.timezone)
    day = start.astimezone(zone).date() - _DAY
    last = end.astimezone(zone).date()
    total = timedelta(0)
    covered = datetime.min.replace(tzinfo=UTC)
    while day <= last:
        for a, b in _day_pieces(hours, zone, day):
            a, b = max(a, start, covered), min(b, end)
            if b > a:
                total += b - a
                covered = b
        day += _DAY
    return total.total_seconds()


def deadline(hours: BusinessHours, start: datetime, seconds: float) -> datetime:
    """The instant when ``seconds`` open seconds have passed since ``start`` (``start`` for 0).

    Raises ValueError for negative ``seconds`` or a calendar that never opens.
    """
    start = _utc(start)
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    remaining = timedelta(seconds=seconds)
    if remaining <= timedelta(0):
        return start
    if _always_open(hours):
        return start + remaining
    for a, b in _pieces_from(hours, start):
        a = max(a, start)
        if b <= a:
            continue
        if b - a >= remaining:
            return a + remaining
        remaining -= b - a
    raise ValueError(f"the calendar in {hours.timezone} never opens")


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return at.astimezone(UTC)


def _always_open(hours: BusinessHours) -> bool:
    """Whole days every day and no holidays: open every second, whatever the time zone."""
    return not hours.holidays and all(
        (time(0), time(0)) in hours.weekly.get(day, ()) for day in range(7)
    )


def _pieces_from(hours: BusinessHours, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Disjoint open pieces in time order, from the local day before ``since``'s; stops after
    SEARCH_DAYS days in a row with nothing open after ``since``."""
    zone = ZoneInfo(hours.timezone)
    day = since.astimezone(zone).date() - _DAY
    idle = 0
    covered = datetime.min.replace(tzinfo=UTC)
    while idle <= SEARCH_DAYS:
        idle += 1
        for a, b in _day_pieces(hours, zone, day):
            a = max(a, covered)
            if b > a:
                covered = b
                if b > since:
                    idle = 0
                yield a, b
        day += _DAY


def _day_pieces(hours: BusinessHours, zone: ZoneInfo, day: date) -> list[tuple[datetime, datetime]]:
    """The open intervals that start on local ``day``, as UTC instants, sorted, non-empty."""
    if day in hours.holidays:
        return []
    pieces = []
    for start, end in hours.weekly.get(day.weekday(), ()):
        a = _instant(zone, day, start)
        b = _instant(zone, day + _DAY if end <= start else day, end)
        if b > a:
            pieces.append((a, b))
    pieces.sort()
    return pieces


def _instant(zone: ZoneInfo, day: date, wall: time) -> datetime:
    """The UTC instant of a local wall time: its first occurrence if it happens twice; the
    moment the clocks changed if it falls in the skipped hour."""
    naive = datetime.combine(day, wall.replace(tzinfo=None))
    first = naive.replace(tzinfo=zone).astimezone(UTC)  # fold=0: the first occurrence
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # In a gap: the two readings straddle the transition; find it to the second.
    other = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo_ts, hi_ts = sorted((int(first.timestamp()), int(other.timestamp())))
    hi_ts += 1
    lo_offset = datetime.fromtimestamp(lo_ts, zone).utcoffset()
    while hi_ts - lo_ts > 1:
        mid = (lo_ts + hi_ts) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == lo_offset:
            lo_ts = mid
        else:
            hi_ts = mid
    return datetime.fromtimestamp(hi_ts, UTC)
