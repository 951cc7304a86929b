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
    value = as_utc(value)
    # Not strftime("%Y"): glibc does not pad years before 1000 to four digits ("80-02-03...").
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"
