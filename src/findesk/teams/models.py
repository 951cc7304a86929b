from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow

ASSIGNMENT_METHODS = ("round_robin", "least_busy")
TEAM = "team"


class Team(Base):
    """A group of agents with its own queue. Routing gives a team's conversations to its online
    members under capacity, by ``assignment_method``; the row is what routing locks (``FOR
    UPDATE`` on PostgreSQL) while it picks, so that concurrent handovers take turns per team."""

    __tablename__ = "teams"
    __table_args__ = (
        CheckConstraint(
            "assignment_method IN ('round_robin', 'least_busy')", name="assignment_method"
        ),
        CheckConstraint("capacity_default >= 0", name="capacity_default"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: ids.new_id(TEAM))
    name: Mapped[str] = mapped_column(String(255), unique=True)
    assignment_method: Mapped[str] = mapped_column(String(16), default="round_robin")
    # Open conversations a member may hold at once, unless the agent has a capacity of their own.
    capacity_default: Mapped[int] = mapped_column(Integer, default=10)
    # Round robin's cursor: the member given the team's latest conversation.
    last_assigned_agent_id: Mapped[str | None] = mapped_column(String(40))
    # Business hours (``teams.calendar``): an IANA zone (None: UTC), the weekly hours as
    # ``{"mon": [["09:00", "17:00"]], ...}`` (None: always open), holidays as ISO dates.
    timezone: Mapped[str | None] = mapped_column(String(64))
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    holidays: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (Index("ix_team_members_agent", "agent_id"),)

    team_id: Mapped[str] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
