"""Time: always timezone-aware UTC inside, ISO 8601 with milliseconds and ``Z`` on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes (as SQLite hands them back) are UTC by our own convention."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(value: datetime) -> str:
    # Not strftime("%Y"): glibc does not pad years before 1000 to four digits ("80-02-03...");
    # datetime.isoformat does, truncates to milliseconds as strftime would, and is twice as
    # fast (get_messages formats a timestamp a message, 10,000 of them in a long conversation).
    return as_utc(value).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
