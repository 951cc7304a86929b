from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from findesk.kit.text import STORABLE, limited

AssignmentMethod = Literal["round_robin", "least_busy"]
PresenceIn = Literal["online", "away", "offline"]
TeamName = Annotated[str, limited(255), STORABLE, Field(min_length=1)]
Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$", examples=["09:00"])]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WeeklyHours = Annotated[
    dict[Day, Annotated[list[tuple[Clock, Clock]], Field(max_length=12)]],
    Field(
        description="Open intervals [start, end) per day in the team's time zone; an end of"
        ' "24:00" (or "00:00") is midnight at the day\'s end; missing days are closed.'
        " null: always open.",
        examples=[{"mon": [["09:00", "12:30"], ["13:30", "17:00"]]}],
    ),
]
Holiday = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["2026-12-25"])]
Holidays = Annotated[
    list[Holiday],
    Field(max_length=1000, description="Dates closed all day, in the team's time zone."),
]
TimeZone = Annotated[
    str | None,
    Field(max_length=64, description="An IANA name; null: UTC.", examples=["Europe/Paris"]),
]
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
    timezone: TimeZone = None
    business_hours: WeeklyHours | None = None
    holidays: Holidays = Field(default_factory=list)


class TeamPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: TeamName | None = None
    assignment_method: AssignmentMethod | None = None
    capacity_default: Capacity | None = None
    timezone: TimeZone = Field(
        default=None, description="An IANA name; null: UTC. Left out: unchanged."
    )
    business_hours: WeeklyHours | None = Field(
        default=None, description="null: always open. Left out: unchanged."
    )
    holidays: Holidays | None = Field(default=None, description="Left out: unchanged.")


class TeamView(BaseModel):
    id: str
    name: str
    assignment_method: AssignmentMethod
    capacity_default: int
    member_ids: list[str]
    timezone: str | None = Field(description="null: UTC.")
    business_hours: dict[str, list[list[str]]] | None = Field(description="null: always open.")
    holidays: list[str]
    open_now: bool = Field(description="Whether the team is in its business hours now.")
    opens_at: datetime | None = Field(description="When closed: when it next opens.")
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
