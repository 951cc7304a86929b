"""SLA policies on the wire, checked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from findesk.kit.text import STORABLE, limited
from findesk.teams.schemas import WHOLE

Escalation = Literal["notify", "raise_priority", "reassign"]
# Up to a year of business minutes.
Minutes = Annotated[int, Field(ge=1, le=525_600), WHOLE]
Position = Annotated[int, Field(ge=0, le=1_000_000), WHOLE]
PolicyName = Annotated[str, limited(255), STORABLE, Field(min_length=1)]
TeamId = Annotated[str, Field(min_length=1, max_length=40)]
Priority = Annotated[str, limited(64), STORABLE]


class PolicyIn(BaseModel):
    """A policy: for conversations of ``team_id`` (any when null) with the ``priority``
    attribute (any when null; ignoring case), targets in business minutes of the team's
    hours (each optional; at least one), and what a breach does besides the alert."""

    model_config = ConfigDict(extra="forbid")
    name: PolicyName
    position: Position | None = Field(
        default=None, description="Tried in ascending order; default last."
    )
    team_id: TeamId | None = None
    priority: Priority | None = Field(default=None, examples=["urgent"])
    first_response_minutes: Minutes | None = Field(
        default=None, description="From the handover to the first human public reply."
    )
    next_response_minutes: Minutes | None = Field(
        default=None,
        description="From the end user's message after a human's reply to the next one.",
    )
    resolution_minutes: Minutes | None = Field(
        default=None, description="From the handover to resolved (a reopen starts it again)."
    )
    escalation: Escalation = "notify"
    escalation_team_id: TeamId | None = Field(
        default=None, description="For reassign: the team the conversation goes to."
    )


class PolicyPatch(BaseModel):
    """Only the fields given change; null clears an optional one."""

    model_config = ConfigDict(extra="forbid")
    name: PolicyName | None = None
    position: Position | None = None
    team_id: TeamId | None = None
    priority: Priority | None = None
    first_response_minutes: Minutes | None = None
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    escalation: Escalation | None = None
    escalation_team_id: TeamId | None = None


class PolicyView(BaseModel):
    id: str
    name: str
    position: int
    team_id: str | None
    priority: str | None
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    escalation: Escalation
    escalation_team_id: str | None
    created_at: datetime
    updated_at: datetime


class TimerView(BaseModel):
    """One target of the conversation: ``state`` is ``met``, ``breached`` (and not met),
    ``paused`` or ``running``."""

    target: Literal["first_response", "next_response", "resolution"]
    state: Literal["running", "paused", "met", "breached"]
    policy_id: str | None
    policy_name: str
    started_at: datetime
    due_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None
