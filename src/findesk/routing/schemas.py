"""Routing rules on the wire, checked: what a condition may say and what a rule may do."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from findesk.kit.text import STORABLE, TagText, limited
from findesk.teams.schemas import WHOLE

ValueOp = Literal["is", "is_not", "in", "contains", "exists", "not_exists", "gt", "lt"]
TagOp = Literal["is", "is_not", "in"]
VALUE_FIELD = r"^(channel|(conversation|user)\.[^.\s]{1,255})$"
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CONDITIONS_MAX = 20
LIST_MAX = 50
ShortText = Annotated[str, limited(255), STORABLE]
# Each strictly: "12" is text, never the number a lax union would read in it.
Scalar = Annotated[ShortText, Strict()] | Annotated[float, Strict()] | Annotated[bool, Strict()]
Day = Annotated[int, Field(ge=0, le=6), WHOLE]
Position = Annotated[int, Field(ge=0, le=1_000_000), WHOLE]


class TimeWindow(BaseModel):
    """From ``start`` until ``end`` (local times, ``HH:MM``; an ``end`` before ``start`` runs
    past midnight) on ``days`` (0 Monday … 6 Sunday), in ``timezone`` (an IANA name)."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=CLOCK.pattern, examples=["09:00"])
    end: str = Field(pattern=CLOCK.pattern, examples=["17:00"])
    days: list[Day] = Field(default_factory=lambda: list(range(7)), min_length=1, max_length=7)
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Paris"])

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def holds(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        clock = local.strftime("%H:%M")
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= clock < self.end
        # Past midnight: the evening belongs to its day, the small hours to the day before.
        if clock >= self.start:
            return local.weekday() in self.days
        return clock < self.end and (local.weekday() - 1) % 7 in self.days


class TagCondition(BaseModel):
    """The conversation has the tag (``is``; ``in``: one of them), or has none of them
    (``is_not``). Tags compare ignoring case."""

    model_config = ConfigDict(extra="forbid")
    field: Literal["tag"]
    op: TagOp = "is"
    value: TagText | Annotated[list[TagText], Field(min_length=1, max_length=LIST_MAX)] = Field(
        examples=["Billing"]
    )

    @field_validator("value")
    @classmethod
    def _some(cls, value: str | list[str]) -> str | list[str]:
        values = value if isinstance(value, list) else [value]
        if not any(v.strip() for v in values):
            raise ValueError("name a tag")
        return value


class TimeCondition(BaseModel):
    """Now is within the window."""

    model_config = ConfigDict(extra="forbid")
    field: Literal["time"]
    op: Literal["between"] = "between"
    value: TimeWindow


class ValueCondition(BaseModel):
    """A value of the conversation: ``channel`` (its ``channel`` attribute, else
    ``messenger``), ``conversation.<attribute>``, or ``user.<attribute>`` (the end user's;
    ``user.email`` and ``user.name`` are theirs too). ``is``, ``is_not``, ``contains`` take one
    value, ``in`` a list, ``gt`` and ``lt`` a number, ``exists`` and ``not_exists`` none. Text
    compares ignoring case."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(pattern=VALUE_FIELD, max_length=300, examples=["conversation.issue_type"])
    op: ValueOp = "is"
    value: Scalar | Annotated[list[Scalar], Field(max_length=LIST_MAX)] | None = Field(
        default=None, examples=["Billing"]
    )

    @model_validator(mode="after")
    def _fits(self) -> ValueCondition:
        value = self.value
        if self.op in ("exists", "not_exists"):
            self.value = None
        elif self.op == "in":
            if not isinstance(value, list) or not value:
                raise ValueError(f"in takes a list of 1 to {LIST_MAX} values")
        elif self.op in ("gt", "lt"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.op} takes a number")
        elif value is None or isinstance(value, list):
            raise ValueError(f"{self.op} takes one value")
        return self


Condition = Annotated[TagCondition | TimeCondition | ValueCondition, Field(union_mode="smart")]


class Actions(BaseModel):
    """What a matching rule does: put the conversation in a team's queue (and give it to one
    of its members if one can take it), set its ``priority`` attribute, add tags. At least
    one of them."""

    model_config = ConfigDict(extra="forbid")
    team_id: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    priority: Annotated[str, limited(64), STORABLE, Field(min_length=1)] | None = None
    add_tags: list[TagText] = Field(default_factory=list, max_length=10)

    @field_validator("add_tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        # As a conversation's tags are set: blank ones dropped, each kept once.
        return list(dict.fromkeys(tag.strip() for tag in value if tag.strip()))

    @model_validator(mode="after")
    def _something(self) -> Actions:
        if self.team_id is None and not (self.priority or "").strip() and not self.add_tags:
            raise ValueError("a rule must do something: team_id, priority or add_tags")
        return self


RuleName = Annotated[str, limited(255), STORABLE, Field(min_length=1)]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: RuleName
    position: Position | None = Field(
        default=None, description="Tried in ascending order; default last."
    )
    enabled: bool = Field(default=True, strict=True)
    conditions: list[Condition] = Field(default_factory=list, max_length=CONDITIONS_MAX)
    actions: Actions


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: RuleName | None = None
    position: Position | None = None
    enabled: bool | None = Field(default=None, strict=True)
    conditions: list[Condition] | None = Field(default=None, max_length=CONDITIONS_MAX)
    actions: Actions | None = None


class RuleView(BaseModel):
    id: str
    name: str
    position: int
    enabled: bool
    conditions: list[dict[str, Any]]
    actions: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conditions: list[Condition] = Field(max_length=CONDITIONS_MAX)
    recent: Annotated[int, Field(ge=1, le=500), WHOLE] = Field(
        default=100, description="How many recent conversations."
    )


class PreviewMatch(BaseModel):
    id: str
    title: str | None
    status: str
    tags: list[str]
    team_id: str | None
    last_activity_at: datetime


class PreviewOut(BaseModel):
    examined: int
    matches: list[PreviewMatch]
