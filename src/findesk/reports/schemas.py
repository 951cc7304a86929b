"""What a report is: the question (``ReportQuery``) and the answer (``Report``), the same for the
reports page, ``GET /api/v1/reports/...``, the CSV export and ``findesk report``.

Every measure is defined in the README ("Reports: what each number means"). Conversations count
under the day (in the report time zone, ``FINDESK_REPORTS_TIMEZONE``) they were created: a
period's handover rate, wait times and resolutions are those of the conversations that started
in it. Durations are seconds; an average of nothing is None, never 0.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Bucket = Literal["day", "week"]

# The response-time distribution's bins: upper bounds in seconds (the last bin is open).
DISTRIBUTION_BOUNDS: tuple[int, ...] = (60, 300, 900, 3600, 4 * 3600, 24 * 3600)
DISTRIBUTION_LABELS: tuple[str, ...] = (
    "under 1 min",
    "1-5 min",
    "5-15 min",
    "15-60 min",
    "1-4 h",
    "4-24 h",
    "over 24 h",
)


class ReportQuery(BaseModel):
    """A report's question: the days ``start`` to ``end`` (both included, in the report time
    zone), by day or week (weeks start on Monday), and filters (None: all)."""

    start: date
    end: date
    bucket: Bucket = "day"
    tag: str | None = None
    team_id: str | None = None  # teams arrive with issue 17: the filter is ready for them
    agent_id: str | None = None
    channel: str | None = None
    reason: str | None = None  # Fin's handover reason


class Measures(BaseModel):
    """The measures of one period (or of the whole report: ``Report.totals``)."""

    conversations: int = 0
    fin_resolved: int = 0  # resolved by Fin, never handed over
    fin_resolution_rate: float | None = None  # fin_resolved / conversations
    durable_fin_resolutions: int = 0  # Fin resolutions whose reopen window ended quietly
    fin_reopened: int = 0  # Fin resolutions the end user came back to within the window
    fin_reopen_rate: float | None = None  # fin_reopened / fin_resolved
    handed_over: int = 0
    handover_rate: float | None = None  # handed_over / conversations
    taken_over: int = 0
    avg_seconds_to_take_over: float | None = None
    first_human_replies: int = 0
    avg_seconds_to_first_human_reply: float | None = None
    resolved: int = 0
    avg_seconds_to_resolve: float | None = None
    replies: int = 0  # public replies by Fin and humans
    human_replies: int = 0
    replies_per_conversation: float | None = None
    csat_ratings: int = 0
    csat_average: float | None = None


class Period(BaseModel):
    start: date  # the period's first day (a Monday for weeks)
    measures: Measures


class Count(BaseModel):
    key: str
    label: str
    count: int


class AgentRow(BaseModel):
    agent_id: str
    name: str
    conversations: int  # conversations this agent handled first (took over or first replied)
    human_replies: int
    first_human_replies: int
    avg_seconds_to_first_human_reply: float | None
    resolved: int
    csat_ratings: int
    csat_average: float | None


class Csat(BaseModel):
    """Ratings split by who handled the conversation: Fin alone, or a human after a handover."""

    label: str  # "Fin only" | "Human-handled"
    ratings: int
    average: float | None
    by_score: list[int] = Field(default_factory=lambda: [0, 0, 0, 0, 0])  # counts of 1..5


class Report(BaseModel):
    query: ReportQuery
    timezone: str
    reopen_window_days: int
    computed_at: datetime  # the facts are current up to this moment (refreshed every minute)
    totals: Measures
    series: list[Period]
    handover_reasons: list[Count]  # most frequent first
    channels: list[Count]
    response_times: list[Count]  # handover to first human reply, DISTRIBUTION_LABELS order
    agents: list[AgentRow]  # most conversations first
    csat: list[Csat]  # Fin only, then human-handled
