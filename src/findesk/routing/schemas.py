"""Routing rules on the wire, checked: what a condition may say and what a rule may do."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from findesk.kit.text import TAG_MAX

Op = Literal["is", "is_not", "in", "contains", "exists", "not_exists", "gt", "lt", "between"]
FIELD = re.compile(r"^(tag|channel|time|conversation\.[^.\s]{1,255}|user\.[^.\s]{1,255})$")
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CONDITIONS_MAX = 20
# The operators each kind of field takes.
TAG_OPS = {"is", "is_not", "in"}
VALUE_OPS = {"is", "is_not", "in", "contains", "exists", "not_exists", "gt", "lt"}


class TimeWindow(BaseModel):
    """From ``start`` until ``end`` (local times, ``HH:MM``; an ``end`` before ``start`` runs
    past midnight) on ``days`` (0 Monday … 6 Sunday), in ``timezone``."""

    model_config = ConfigDict(extra="forbid")
    start: str
    end: str
    days: list[int] = Field(default_factory=lambda: list(range(7)))
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK.match(value):
            raise ValueError("must be a time of day as HH:MM")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if not value or any(day not in range(7) for day in value):
            raise ValueError("must list days from 0 (Monday) to 6 (Sunday)")
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


class Condition(BaseModel):
    """One test. ``field``: ``tag`` (the conversation has the tag), ``channel`` (the
    conversation's ``channel`` attribute, else ``messenger``), ``time`` (now, in a
    ``TimeWindow``), ``conversation.<attribute>`` or ``user.<attribute>`` (the end user's
    attribute; ``user.email`` and ``user.name`` are theirs too). Text compares ignoring case."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(max_length=300, examples=["conversation.issue_type"])
    op: Op = "is"
    value: Any = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if not FIELD.match(self.field):
            raise ValueError(
                "field must be tag, channel, time, conversation.<attribute> or user.<attribute>"
            )
        if self.field == "time":
            if self.op != "between":
                raise ValueError("a time condition's op is between")
            self.value = TimeWindow.model_validate(self.value).model_dump()
            return self
        allowed = TAG_OPS if self.field == "tag" else VALUE_OPS
        if self.op not in allowed:
            raise ValueError(f"{self.field} takes the ops {', '.join(sorted(allowed))}")
        if self.op in ("exists", "not_exists"):
            self.value = None
        elif self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("in takes a non-empty list of values")
        elif self.op in ("gt", "lt"):
            if isinstance(self.value, bool) or not isinstance(self.value, int | float):
                raise ValueError(f"{self.op} takes a number")
        elif self.value is None or isinstance(self.value, dict | list):
            raise ValueError(f"{self.op} takes one value")
        return self


class Actions(BaseModel):
    """What a matching rule does: put the conversation in a team's queue (and give it to one
    of its members if one can take it), set its ``priority`` attribute, add tags."""

    model_config = ConfigDict(extra="forbid")
    team_id: str | None = Field(default=None, max_length=40)
    priority: str | None = Field(default=None, min_length=1, max_length=64)
    add_tags: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("add_tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        cleaned = [tag.strip() for tag in value]
        if any(not tag or len(tag) > TAG_MAX for tag in cleaned):
            raise ValueError(f"tags must be 1 to {TAG_MAX} characters")
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _something(self) -> Actions:
        if self.team_id is None and self.priority is None and not self.add_tags:
            raise ValueError("a rule must do something: team_id, priority or add_tags")
        return self


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    position: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Tried in ascending order; default last."
    )
    enabled: bool = True
    conditions: list[Condition] = Field(default_factory=list, max_length=CONDITIONS_MAX)
    actions: Actions


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    enabled: bool | None = None
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
    recent: int = Field(default=100, ge=1, le=500, description="How many recent conversations.")


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
