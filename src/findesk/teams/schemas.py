from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from findesk.kit.text import STORABLE, limited

AssignmentMethod = Literal["round_robin", "least_busy"]
PresenceIn = Literal["online", "away", "offline"]
TeamName = Annotated[str, limited(255), STORABLE, Field(min_length=1)]
AgentId = Annotated[str, Field(min_length=1, max_length=40)]


def _not_a_boolean(value: object) -> object:
    # JSON's true is not 1 (pydantic's lax mode would take it as one); 3.0 stays 3.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    return value


WHOLE = BeforeValidator(_not_a_boolean)
Capacity = Annotated[int, Field(ge=0, le=1000), WHOLE]


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: TeamName
    assignment_method: AssignmentMethod = "round_robin"
    capacity_default: Capacity = 10
    member_ids: list[AgentId] = Field(default_factory=list, max_length=500)


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: TeamName | None = None
    assignment_method: AssignmentMethod | None = None
    capacity_default: Capacity | None = None


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
    capacity: Capacity | None = Field(description="None: the team's default.")


class PresenceView(BaseModel):
    agent_id: str
    presence: PresenceIn = Field(description="As set by the agent.")
    effective: PresenceIn = Field(description="What routing goes by (away after inactivity).")
    capacity: int | None
    last_seen_at: datetime | None
