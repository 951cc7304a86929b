"""Reports: the measures of ``schemas.Measures`` over the conversations a ``ReportQuery`` picks.

(Interface first; the engine fills it in.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.reports.schemas import DISTRIBUTION_LABELS, Count, Measures, Report, ReportQuery


def build_report(session: Session, settings: Settings, query: ReportQuery) -> Report:
    """The report for ``query``, from the facts as of the last refresh (at most a minute old)."""
    return Report(
        query=query,
        timezone=settings.reports_timezone,
        reopen_window_days=settings.reports_reopen_window_days,
        computed_at=utcnow(),
        totals=Measures(),
        series=[],
        handover_reasons=[],
        channels=[],
        response_times=[
            Count(key=str(i), label=label, count=0) for i, label in enumerate(DISTRIBUTION_LABELS)
        ],
        agents=[],
        csat=[],
    )


def conversation_rows(
    session: Session, settings: Settings, query: ReportQuery
) -> Iterator[dict[str, Any]]:
    """One row per conversation the query picks, oldest first (the per-conversation export):
    id, created_at, channel, agent, handover reason, each timestamp and count behind the
    measures. Streams: memory stays flat for a million rows."""
    return iter(())


def count_conversations(session: Session, settings: Settings, query: ReportQuery) -> int:
    """How many rows ``conversation_rows`` will give (for a progress bar)."""
    return 0
