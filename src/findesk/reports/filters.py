"""A report's question as people and scripts ask it: the page's GET form, the API's query
string and ``findesk report``'s options all go through ``parse_query``, so a bad date gets the
same words everywhere (400 on the web, exit code 1 on the command line).

The measures themselves come through a ``ReportSource``: the engine in ``service`` by default,
anything else in tests (``app.dependency_overrides[report_source]``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from findesk.kit.db import Database
from findesk.kit.errors import Problem
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.reports import service
from findesk.reports.schemas import Report, ReportQuery

DEFAULT_DAYS = 30  # with no dates given: the last 30 days, today included
MAX_DAYS = 2 * 366  # "at most two years"
FILTER_MAX = 255
# The filters, as the query string names them, and the ReportQuery field each sets.
FILTERS = {
    "tag": "tag",
    "team": "team_id",
    "agent": "agent_id",
    "channel": "channel",
    "reason": "reason",
}


class InvalidReportQuery(Problem):
    status = 400
    code = "invalid_report_query"


def today_in(timezone: str) -> date:
    """Today in the report time zone (``Settings`` checks it names a known zone)."""
    return utcnow().astimezone(ZoneInfo(timezone)).date()


def _date(raw: str, name: str, errors: list[dict[str, Any]]) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(
            {"field": name, "msg": f"{name.capitalize()}: {raw!r} is not a date (YYYY-MM-DD)."}
        )
        return None


def _range(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The dates not given, from those given: 30 days up to ``end`` (or ``today``), or from
    ``start`` (not past ``today``)."""
    span = timedelta(days=DEFAULT_DAYS - 1)
    if end is None:
        end = today if start is None else min(today, start + min(span, date.max - start))
        end = max(end, start) if start is not None else end
    if start is None:
        start = end - min(span, end - date.min)
    return start, end


def parse_query(
    params: Mapping[str, str | None], today: date, *, blank_is_missing: bool = True
) -> ReportQuery:
    """The ``ReportQuery`` of ``start``, ``end``, ``bucket`` and the filters (``tag``,
    ``team``, ``agent``, ``channel``, ``reason``); empty values mean "not given" (a GET form
    sends its empty fields; the API, ``blank_is_missing=False``, takes an empty date or bucket
    for the bad value it is). With no dates: the 30 days up to ``today``; with one date, the
    other is 30 days away from it. Raises ``InvalidReportQuery`` (400) listing every problem."""
    errors: list[dict[str, Any]] = []
    if not blank_is_missing:
        for name in ("start", "end", "bucket"):
            value = params.get(name)
            if value is not None and not value.strip():
                errors.append({"field": name, "msg": f"{name.capitalize()}: empty."})
    raw_start = (params.get("start") or "").strip()
    raw_end = (params.get("end") or "").strip()
    start = _date(raw_start, "start", errors) if raw_start else None
    end = _date(raw_end, "end", errors) if raw_end else None
    if not errors:
        start, end = _range(start, end, today)
        if end < start:
            errors.append({"field": "end", "msg": "The end date is before the start date."})
        elif (end - start).days + 1 > MAX_DAYS:
            errors.append(
                {"field": "end", "msg": "A report covers at most two years: narrow the dates."}
            )
    bucket = (params.get("bucket") or "day").strip()
    if bucket not in ("day", "week"):
        errors.append({"field": "bucket", "msg": "Group by day or by week."})
    chosen: dict[str, str | None] = {}
    for name, field_name in FILTERS.items():
        value = (params.get(name) or "").strip()
        if len(value) > FILTER_MAX:
            errors.append(
                {"field": name, "msg": f"{name.capitalize()}: at most {FILTER_MAX} characters."}
            )
        chosen[field_name] = value or None
    if errors:
        raise InvalidReportQuery(" ".join(e["msg"] for e in errors), errors=errors)
    assert start is not None and end is not None
    return ReportQuery(start=start, end=end, bucket=bucket, **chosen)


def query_params(query: ReportQuery) -> dict[str, str]:
    """The query string that asks ``query`` again (for links: CSV, the other views)."""
    params = {"start": query.start.isoformat(), "end": query.end.isoformat()}
    if query.bucket != "day":
        params["bucket"] = query.bucket
    for name, field_name in FILTERS.items():
        value = getattr(query, field_name)
        if value:
            params[name] = value
    return params


Rows = Callable[[Session, Settings, ReportQuery], Iterator[dict[str, Any]]]


@dataclass(frozen=True)
class ReportSource:
    """Where reports come from. The defaults look ``service``'s functions up at each call."""

    build: Callable[[Session, Settings, ReportQuery], Report] = field(
        default=lambda s, c, q: service.build_report(s, c, q)
    )
    rows: Rows = field(default=lambda s, c, q: service.conversation_rows(s, c, q))
    count: Callable[[Session, Settings, ReportQuery], int] = field(
        default=lambda s, c, q: service.count_conversations(s, c, q)
    )
    # Before a read: bring the facts up to date unless a refresh ran within the minute.
    refresh: Callable[[Database, Settings], None] = field(
        default=lambda d, c: service.refresh_if_stale(d, c)
    )


def report_source() -> ReportSource:
    """The FastAPI dependency the reports page and API take their numbers from."""
    return ReportSource()
