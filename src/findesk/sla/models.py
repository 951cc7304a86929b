from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, UTCDateTime
from findesk.kit.timeutil import utcnow

POLICY = "slp"
TARGETS = ("first_response", "next_response", "resolution")
ESCALATIONS = ("notify", "raise_priority", "reassign")


class SlaPolicy(Base):
    """Targets for conversations of a team and priority (None: any), counted in the team's
    business hours. Policies are tried by ``position`` (then id); the first that matches a
    conversation is its policy (``sla.service``)."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        Index("ix_sla_policies_position", "position", "id"),
        CheckConstraint(
            "escalation IN ('notify', 'raise_priority', 'reassign')", name="escalation"
        ),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(POLICY)
    )
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Conditions: the conversation's team, its ``priority`` attribute (ignoring case).
    team_id: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str | None] = mapped_column(String(64))
    # Targets in business minutes; None: no such target.
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    escalation: Mapped[str] = mapped_column(String(16), default="notify")
    # For ``reassign``: the team it goes to.
    escalation_team_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def minutes(self, target: str) -> int | None:
        value: int | None = getattr(self, f"{target}_minutes")
        return value


class SlaTimer(Base):
    """One target of one conversation: running from ``started_at``, due at ``due_at`` (the
    target's business seconds, plus those it spent paused, after the start), until met; a new
    cycle (a reopen, the end user writing again) starts the same row again.

    ``paused_at``: paused since then (waiting on the customer); ``paused_seconds`` the business
    seconds of the pauses that ended. ``breached_at`` is written once, by the checker."""

    __tablename__ = "sla_timers"
    __table_args__ = (
        UniqueConstraint("conversation_id", "target", name="uq_sla_timers_conversation_target"),
        CheckConstraint(
            "target IN ('first_response', 'next_response', 'resolution')", name="target"
        ),
        # The checker's scan: running, not breached, by due time.
        Index("ix_sla_timers_due", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(16))
    # The policy (no foreign key: deleting one leaves its timers running as they were).
    policy_id: Mapped[str | None] = mapped_column(String(40))
    policy_name: Mapped[str] = mapped_column(String(255))
    target_seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
