from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AssignmentMethod = Literal["round_robin", "least_busy"]
PresenceIn = Literal["online", "away", "offline"]


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    assignment_method: AssignmentMethod = "round_robin"
    capacity_default: int = Field(default=10, ge=0, le=1000)
    member_ids: list[str] = Field(default_factory=list, max_length=500)


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    assignment_method: AssignmentMethod | None = None
    capacity_default: int | None = Field(default=None, ge=0, le=1000)


class TeamView(BaseModel):
    id: str
    name: str
    assignment_method: AssignmentMethod
    capacity_default: int
    member_ids: list[str]
    created_at: datetime
    updated_at: datetime


class TeamQueueView(BaseModel):
    team_id: str
    name: str
    open: int = Field(description="Open conversations in the team.")
    waiting: int = Field(description="Of them, assigned to nobody and not snoozed.")


class PresenceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    presence: PresenceIn


class CapacitySet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capacity: int | None = Field(ge=0, le=1000, description="None: the team's default.")


class PresenceView(BaseModel):
    agent_id: str
    presence: PresenceIn = Field(description="As set by the agent.")
    effective: PresenceIn = Field(description="What routing goes by (away after inactivity).")
    capacity: int | None
    last_seen_at: datetime | None
