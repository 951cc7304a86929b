"""A hand-built report with numbers worked out by hand, for the reports page, API and CSV tests
(the renderers take any ``Report``), and the way to serve it from a live server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from findesk.reports.filters import ReportSource, report_source
from findesk.reports.schemas import (
    DISTRIBUTION_LABELS,
    AgentRow,
    Count,
    Csat,
    Measures,
    Period,
    Report,
    ReportQuery,
)
from support.server import LiveServer

EVIL_REASON = "<script>alert(1)</script>"
FORMULA_TAG = '=HYPERLINK("http://evil.example")'


def sample_report(query: ReportQuery | None = None) -> Report:
    query = query or ReportQuery(start=date(2026, 11, 2), end=date(2026, 11, 4))
    days = [
        (date(2026, 11, 2), 10, 6, 4),
        (date(2026, 11, 3), 20, 12, 8),
        (date(2026, 11, 4), 5, 1, 4),
    ]
    series = [
        Period(
            start=day,
            measures=Measures(
                conversations=n,
                fin_resolved=fin,
                fin_resolution_rate=fin / n,
                handed_over=handed,
                handover_rate=handed / n,
            ),
        )
        for day, n, fin, handed in days
    ]
    return Report(
        query=query,
        timezone="UTC",
        reopen_window_days=7,
        computed_at=datetime(2026, 11, 4, 14, 37, tzinfo=UTC),
        totals=Measures(
            conversations=35,
            fin_resolved=19,
            fin_resolution_rate=19 / 35,
            durable_fin_resolutions=17,
            fin_reopened=2,
            fin_reopen_rate=2 / 19,
            handed_over=16,
            handover_rate=16 / 35,
            taken_over=15,
            avg_seconds_to_take_over=150.0,
            first_human_replies=14,
            avg_seconds_to_first_human_reply=420.0,
            resolved=30,
            avg_seconds_to_resolve=5400.0,
            csat_ratings=9,
            csat_average=4.2,
        ),
        series=series,
        handover_reasons=[
            Count(key="asked_for_human", label="Asked for a human", count=9),
            Count(key="no_answer", label="No answer found", count=6),
            Count(key="evil", label=EVIL_REASON, count=3),
        ],
        channels=[
            Count(key="messenger", label="Messenger", count=30),
            Count(key=FORMULA_TAG, label=FORMULA_TAG, count=5),
        ],
        response_times=[
            Count(key=str(i), label=label, count=n)
            for i, (label, n) in enumerate(
                zip(DISTRIBUTION_LABELS, [2, 5, 4, 2, 1, 0, 0], strict=True)
            )
        ],
        agents=[
            AgentRow(
                agent_id="agt_ada",
                name="Ada Agent",
                conversations=10,
                human_replies=25,
                first_human_replies=9,
                avg_seconds_to_first_human_reply=300.0,
                resolved=9,
                csat_ratings=4,
                csat_average=4.5,
            ),
            AgentRow(
                agent_id="agt_bob",
                name="-Bob",
                conversations=5,
                human_replies=7,
                first_human_replies=5,
                avg_seconds_to_first_human_reply=None,
                resolved=4,
                csat_ratings=0,
                csat_average=None,
            ),
        ],
        csat=[
            Csat(label="Fin only", ratings=5, average=4.0, by_score=[0, 1, 0, 2, 2]),
            Csat(label="Human-handled", ratings=4, average=4.5, by_score=[0, 0, 0, 2, 2]),
        ],
    )


CONVERSATION_ROWS: list[dict[str, Any]] = [
    {
        "id": "conv_1",
        "created_at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        "channel": "messenger",
        "handover_reason": None,
        "tag": "@SUM(A1)",
    },
    {
        "id": "conv_2",
        "created_at": datetime(2026, 11, 3, 10, 30, tzinfo=UTC),
        "channel": "email",
        "handover_reason": "asked_for_human",
        "tag": "billing",
    },
]


class HandBuilt:
    """Serves ``sample_report`` (asked with the request's own question) and the two rows,
    recording the questions it was asked."""

    def __init__(self) -> None:
        self.asked: list[ReportQuery] = []

    def source(self) -> ReportSource:
        def build(_session: Any, _settings: Any, query: ReportQuery) -> Report:
            self.asked.append(query)
            return sample_report(query)

        def rows(_session: Any, _settings: Any, query: ReportQuery) -> Iterator[dict[str, Any]]:
            self.asked.append(query)
            return iter(CONVERSATION_ROWS)

        return ReportSource(
            build=build,
            rows=rows,
            count=lambda *_: len(CONVERSATION_ROWS),
            refresh=lambda *_: None,
        )


def serve_hand_built(server: LiveServer) -> HandBuilt:
    """Make ``server`` answer every report with the hand-built one (undo: ``stop_hand_built``)."""
    hand = HandBuilt()
    server.app.dependency_overrides[report_source] = hand.source
    return hand


def stop_hand_built(server: LiveServer) -> None:
    server.app.dependency_overrides.pop(report_source, None)
