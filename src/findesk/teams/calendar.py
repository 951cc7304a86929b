"""A team's business hours as stored and as typed: checking them (clear 422s), turning them into
a ``hours.BusinessHours``, and saying whether the team is open ("Open now", "Opens Mon 09:00").

Stored shape: ``timezone`` an IANA name (None: UTC); ``business_hours`` ``{"mon": [["09:00",
"17:00"]], ...}`` with ``"24:00"`` (or ``"00:00"``) as an end meaning midnight at the day's end
(None: always open); ``holidays`` ISO dates, closed all day in the team's zone. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from findesk.kit.text import invalid
from findesk.teams import hours
from findesk.teams.hours import BusinessHours

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_INTERVALS_PER_DAY = 12
MAX_HOLIDAYS = 1000
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(value: str | None, *, field: str = "timezone") -> str | None:
    """An IANA zone name, or None (UTC)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value not in _zones():
        raise invalid(
            f"Unknown time zone {value[:64]!r}: use an IANA name such as Europe/Paris.",
            field=field,
        )
    return value


def _minutes(value: object, *, field: str) -> int:
    match = _CLOCK.match(value) if isinstance(value, str) else None
    if match is None:
        raise invalid(f"{str(value)[:20]!r} is not a time of day as HH:MM.", field=field)
    minutes = int(match[1]) * 60 + int(match[2])
    if minutes > 24 * 60:
        raise invalid(f"{value!r} is after 24:00.", field=field)
    return minutes


def check_weekly(
    value: Mapping[str, Any] | None, *, field: str = "business_hours"
) -> dict[str, list[list[str]]] | None:
    """The weekly hours as stored (days in week order, each day's intervals sorted, a midnight
    end written ``"24:00"``), or None (always open). Each interval is ``[start, end)``: start
    before end, or end ``"24:00"``/``"00:00"``; a day's intervals do not overlap."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise invalid("Business hours are an object of days, or null.", field=field)
    unknown = [str(k)[:10] for k in value if k not in DAYS]
    if unknown:
        raise invalid(f"Unknown day {unknown[0]!r}: the days are {', '.join(DAYS)}.", field=field)
    weekly: dict[str, list[list[str]]] = {}
    for day in DAYS:
        intervals = value.get(day)
        if intervals is None:
            continue
        where = f"{field}.{day}"
        if not isinstance(intervals, Sequence) or isinstance(intervals, str):
            raise invalid(f"{day}: a list of [start, end] pairs.", field=where)
        if len(intervals) > MAX_INTERVALS_PER_DAY:
            raise invalid(f"{day}: at most {MAX_INTERVALS_PER_DAY} intervals a day.", field=where)
        spans: list[tuple[int, int]] = []
        for interval in intervals:
            if (
                not isinstance(interval, Sequence)
                or isinstance(interval, str)
                or len(interval) != 2
            ):
                raise invalid(f"{day}: each interval is a [start, end] pair.", field=where)
            start = _minutes(interval[0], field=where)
            end = _minutes(interval[1], field=where)
            if start == 24 * 60:
                raise invalid(f"{day}: an interval cannot start at 24:00.", field=where)
            if end == 0:
                end = 24 * 60
            if end <= start:
                raise invalid(
                    f"{day}: {interval[0]}-{interval[1]} ends before it starts"
                    " (only 24:00 or 00:00 may end a day).",
                    field=where,
                )
            spans.append((start, end))
        spans.sort()
        for (_, end_a), (start_b, _) in pairwise(spans):
            if start_b < end_a:
                raise invalid(f"{day}: intervals overlap.", field=where)
        weekly[day] = [[_clock(a), _clock(b)] for a, b in spans]
    if not any(weekly.values()):
        raise invalid(
            "Business hours need at least one open interval (null means always open).",
            field=field,
        )
    return weekly


def check_holidays(value: Sequence[Any] | None, *, field: str = "holidays") -> list[str]:
    """ISO dates, sorted, each once."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise invalid("Holidays are a list of dates (YYYY-MM-DD).", field=field)
    days: set[date] = set()
    for item in value:
        if not isinstance(item, str) or not _ISO_DATE.match(item):
            raise invalid(f"{str(item)[:20]!r} is not a date as YYYY-MM-DD.", field=field)
        try:
            days.add(date.fromisoformat(item))
        except ValueError:
            raise invalid(f"{item!r} is not a date.", field=field) from None
    if len(days) > MAX_HOLIDAYS:
        raise invalid(f"At most {MAX_HOLIDAYS} holidays.", field=field)
    return [d.isoformat() for d in sorted(days)]


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _time(clock: str) -> time:
    hh, mm = clock.split(":")
    return time(0) if hh == "24" else time(int(hh), int(mm))


def business_hours(
    timezone: str | None, weekly: Mapping[str, Any] | None, holidays: Sequence[str] | None
) -> BusinessHours:
    """The calendar of stored (checked) values: ``hours.ALWAYS`` when there are no weekly
    hours."""
    if weekly is None:
        return hours.ALWAYS
    return BusinessHours(
        timezone=timezone or "UTC",
        weekly={
            DAYS.index(day): tuple((_time(a), _time(b)) for a, b in intervals)
            for day, intervals in weekly.items()
            if day in DAYS
        },
        holidays=frozenset(date.fromisoformat(d) for d in holidays or ()),
    )


def status_text(calendar: BusinessHours, now: datetime) -> str:
    """ "Open now", "Opens Mon 09:00" (in the calendar's zone), or "Closed" (never opens)."""
    if hours.is_open(calendar, now):
        return "Open now"
    opens = hours.next_open(calendar, now)
    if opens is None:
        return "Closed"
    local = opens.astimezone(ZoneInfo(calendar.timezone))
    when = f"{DAY_NAMES[local.weekday()]} {local:%H:%M}"
    if (local.date() - now.astimezone(local.tzinfo).date()).days >= 7:
        when = f"{local:%Y-%m-%d} {local:%H:%M}"
    return f"Opens {when}"
