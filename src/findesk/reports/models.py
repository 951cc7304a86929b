"""The reports' precomputed tables, kept by ``service.refresh`` (every minute in ``findesk serve``).

``report_facts``: one row per conversation, what its history and messages say (``facts.py``).
``report_days``: the facts summed per day and dimension (channel, agent, handover reason, team),
so that a report over a million conversations sums a few thousand rows. A report filtered by tag
sums the facts instead (a conversation has many tags).
``report_state``: the one row that says how far the facts are current, and for which time zone
and reopen window they were computed (changing either rebuilds them).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, UTCDateTime

_Count = BigInteger().with_variant(Integer, "sqlite")


class ReportFact(Base):
    __tablename__ = "report_facts"
    __table_args__ = (
        Index("ix_report_facts_day", "day"),
        Index("ix_report_facts_user", "user_id", "fin_resolved_at"),
        Index("ix_report_facts_fin_resolved", "fin_resolved_at"),
    )

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    day: Mapped[date] = mapped_column(Date)  # created_at's day in the report time zone
    channel: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(40), default="")  # "" none (teams: issue 17)
    agent_id: Mapped[str] = mapped_column(String(40), default="")  # "" no human handled it
    reason: Mapped[str] = mapped_column(String(255), default="")  # "" not handed over
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds_to_take_over: Mapped[float | None] = mapped_column(Float)
    seconds_to_first_human_reply: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds_to_resolve: Mapped[float | None] = mapped_column(Float)
    fin_resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    came_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    human_handled: Mapped[bool] = mapped_column(Boolean, default=False)
    replies: Mapped[int] = mapped_column(Integer, default=0)
    human_replies: Mapped[int] = mapped_column(Integer, default=0)
    csat_score: Mapped[int | None] = mapped_column(Integer)


class ReportDay(Base):
    """Sums of ``report_facts`` for one day and one combination of dimensions. Every measure
    column is additive; averages are sums over counts, taken when the report is read."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reason: Mapped[str] = mapped_column(String(255), primary_key=True)
    conversations: Mapped[int] = mapped_column(_Count)
    fin_resolved: Mapped[int] = mapped_column(_Count)
    fin_reopened: Mapped[int] = mapped_column(_Count)
    handed_over: Mapped[int] = mapped_column(_Count)
    taken_over: Mapped[int] = mapped_column(_Count)
    take_over_seconds: Mapped[float] = mapped_column(Float)
    first_human_replies: Mapped[int] = mapped_column(_Count)
    first_human_reply_seconds: Mapped[float] = mapped_column(Float)
    resolved: Mapped[int] = mapped_column(_Count)
    resolve_seconds: Mapped[float] = mapped_column(Float)
    replies: Mapped[int] = mapped_column(_Count)
    human_replies: Mapped[int] = mapped_column(_Count)
    # Ratings 1..5, of conversations Fin handled alone (f) and of human-handled ones (h).
    csat_f1: Mapped[int] = mapped_column(_Count)
    csat_f2: Mapped[int] = mapped_column(_Count)
    csat_f3: Mapped[int] = mapped_column(_Count)
    csat_f4: Mapped[int] = mapped_column(_Count)
    csat_f5: Mapped[int] = mapped_column(_Count)
    csat_h1: Mapped[int] = mapped_column(_Count)
    csat_h2: Mapped[int] = mapped_column(_Count)
    csat_h3: Mapped[int] = mapped_column(_Count)
    csat_h4: Mapped[int] = mapped_column(_Count)
    csat_h5: Mapped[int] = mapped_column(_Count)
    # Handover to first human reply, in the bins of schemas.DISTRIBUTION_BOUNDS.
    rt0: Mapped[int] = mapped_column(_Count)
    rt1: Mapped[int] = mapped_column(_Count)
    rt2: Mapped[int] = mapped_column(_Count)
    rt3: Mapped[int] = mapped_column(_Count)
    rt4: Mapped[int] = mapped_column(_Count)
    rt5: Mapped[int] = mapped_column(_Count)
    rt6: Mapped[int] = mapped_column(_Count)


class ReportState(Base):
    __tablename__ = "report_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    timezone: Mapped[str] = mapped_column(String(64))
    reopen_window_days: Mapped[int] = mapped_column(Integer)
    # Changes at or after this moment (less a margin) are not yet in the facts.
    current_to: Mapped[datetime] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime)
