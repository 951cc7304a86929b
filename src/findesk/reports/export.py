"""CSV of every report view: the numbers the page's tables show, one file per view, and the
per-conversation rows (streamed: memory stays flat however many there are).

Cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return: tags and reasons come from Fin and end users) get a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from findesk.kit.timeutil import isoformat
from findesk.reports.schemas import AgentRow, Measures, Report, ReportQuery

# The views, in the order the page shows them (``conversations``: one row per conversation).
VIEWS = (
    "totals",
    "series",
    "handover_reasons",
    "channels",
    "response_times",
    "agents",
    "csat",
    "conversations",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEASURES = tuple(Measures.model_fields)
AGENT_COLUMNS = tuple(AgentRow.model_fields)


def conversation_columns() -> list[str]:
    """The per-conversation header when there is no row to name its columns: the facts'."""
    from findesk.reports.models import ReportFact

    return [column.name for column in ReportFact.__table__.columns]


FLUSH_ROWS = 500  # rows per chunk of a streamed CSV


def normal_view(name: str) -> str | None:
    """The view ``name`` names (``handover-reasons`` and ``handover_reasons`` alike), or None."""
    view = name.strip().lower().replace("-", "_")
    return view if view in VIEWS else None


def safe_cell(value: Any) -> str:
    """A value as a CSV cell: numbers as they are, times in ISO 8601, text guarded."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _measures(m: Measures) -> list[Any]:
    return [getattr(m, name) for name in MEASURES]


def table(report: Report, view: str) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of a summary view (every view but ``conversations``)."""
    if view == "totals":
        return (
            ["start", "end", *MEASURES],
            [[report.query.start, report.query.end, *_measures(report.totals)]],
        )
    if view == "series":
        return (
            ["period_start", *MEASURES],
            [[p.start, *_measures(p.measures)] for p in report.series],
        )
    if view in ("handover_reasons", "channels", "response_times"):
        counts = getattr(report, view)
        return ["key", "label", "count"], [[c.key, c.label, c.count] for c in counts]
    if view == "agents":
        return (
            list(AGENT_COLUMNS),
            [[getattr(a, name) for name in AGENT_COLUMNS] for a in report.agents],
        )
    if view == "csat":
        return (
            ["label", "ratings", "average", *(f"score_{n}" for n in range(1, 6))],
            [[c.label, c.ratings, c.average, *c.by_score] for c in report.csat],
        )
    raise ValueError(f"not a summary view: {view}")


def _lines(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text in chunks of ``FLUSH_ROWS`` rows (the header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for number, row in enumerate(rows, 1):
        writer.writerow([safe_cell(v) for v in row])
        if number % FLUSH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def summary_csv(report: Report, view: str) -> str:
    header, rows = table(report, view)
    return "".join(_lines(header, rows))


def conversation_csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The per-conversation rows as CSV, streamed; the first row's keys are the header."""
    first = next(rows, None)
    if first is None:
        yield from _lines(conversation_columns(), ())
        return
    columns = list(first)

    def values() -> Iterator[list[Any]]:
        yield [first.get(c) for c in columns]
        for row in rows:
            yield [row.get(c) for c in columns]

    yield from _lines(columns, values())


def filename(view: str, query: ReportQuery) -> str:
    return f"findesk-{view.replace('_', '-')}-{query.start.isoformat()}-{query.end.isoformat()}.csv"


def json_default(value: Any) -> Any:
    """``json.dumps``'s fallback for the per-conversation rows (times in ISO 8601)."""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
