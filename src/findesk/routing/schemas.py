"""Routing rules on the wire, checked: what a condition may say and what a rule may do."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from findesk.kit.text import STORABLE, TagText, limited
from findesk.teams.schemas import WHOLE

ValueOp = Literal["is", "is_not", "in", "contains", "exists", "not_exists", "gt", "lt"]
TagOp = Literal["is", "is_not", "in"]
_KEY = r"[^.\s]{1,255}"  # an attribute's name: no dot, no space
_OBJECT_TYPE = r"[A-Za-z][A-Za-z0-9_]{0,63}"  # as objects.schemas.IDENTIFIER_PATTERN
_OBJECT_FIELD = r"[A-Za-z_][A-Za-z0-9_]{0,63}"  # as objects.schemas.ATTRIBUTE_NAME_PATTERN
VALUE_FIELD = (
    rf"^(channel|(conversation|user|ticket)\.{_KEY}|object\.{_OBJECT_TYPE}\.{_OBJECT_FIELD})$"
)
LINK_FIELD = rf"^(ticket|object\.{_OBJECT_TYPE})$"
FIELDS_HELP = (
    "the field is tag, time, channel, conversation.<attribute>, user.<attribute>, ticket, "
    "ticket.<type|state|attribute>, object.<type> or object.<type>.<field>"
)
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
    ``user.email`` and ``user.name`` are theirs too); of its ticket: ``ticket.type`` (the
    ticket type's name), ``ticket.state`` (its state's category, such as ``in_progress``, or
    either label), ``ticket.title``, ``ticket.description`` or ``ticket.<attribute>`` (a list
    attribute by its item's label); of the custom objects of a type linked to the conversation
    or to its end user: ``object.<type>.<field>`` (``<type>`` the type's identifier, ``<field>``
    one of its attributes or ``external_id``), which holds if any of them holds it (``is_not``
    and ``not_exists``: if none of them has it). ``is``, ``is_not``, ``contains`` take one
    value, ``in`` a list, ``gt`` and ``lt`` a number, ``exists`` and ``not_exists`` none. Text
    compares ignoring case."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(
        pattern=VALUE_FIELD,
        max_length=300,
        examples=["conversation.issue_type", "ticket.type", "object.Order.status"],
    )
    op: ValueOp = "is"
    value: Scalar | Annotated[list[Scalar], Field(max_length=LIST_MAX)] | None = Field(
        default=None, examples=["Billing"]
    )

    @field_validator("field", mode="before")
    @classmethod
    def _known(cls, value: Any) -> Any:
        # Said plainly, before the pattern's own message would be.
        if isinstance(value, str) and len(value) <= 300 and not re.match(VALUE_FIELD, value):
            if re.match(LINK_FIELD, value):
                raise ValueError(f"{value} takes exists or not_exists")
            raise ValueError(FIELDS_HELP)
        return value

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


class LinkCondition(BaseModel):
    """The conversation has a ticket (``ticket``), or a custom object of the type (its
    identifier) linked to it or to its end user (``object.<type>``): ``exists``; or none:
    ``not_exists``."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(pattern=LINK_FIELD, max_length=100, examples=["ticket", "object.Order"])
    op: Literal["exists", "not_exists"] = "exists"
    value: Scalar | Annotated[list[Scalar], Field(max_length=LIST_MAX)] | None = Field(
        default=None, description="Ignored."
    )

    @model_validator(mode="after")
    def _no_value(self) -> LinkCondition:
        self.value = None
        return self


def _kind(condition: Any) -> str:
    """Which kind of condition the field names: only that kind's errors are told."""
    field = (
        condition.get("field") if isinstance(condition, dict) else getattr(condition, "field", None)
    )
    if field in ("tag", "time"):
        return str(field)
    if isinstance(field, str) and re.match(LINK_FIELD, field):
        op = condition.get("op") if isinstance(condition, dict) else getattr(condition, "op", None)
        # "ticket is …" is a value condition's mistake, told as such.
        return "link" if op in (None, "exists", "not_exists") else "value"
    return "value"


Condition = Annotated[
    Annotated[TagCondition, Tag("tag")]
    | Annotated[TimeCondition, Tag("time")]
    | Annotated[ValueCondition, Tag("value")]
    | Annotated[LinkCondition, Tag("link")],
    Discriminator(_kind),
]


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


CONDITIONS_HELP = (
    "All must hold. `tag`, `time`, `channel`, `conversation.<attribute>`, `user.<attribute>`; "
    "the conversation's ticket: `ticket` (`exists`, `not_exists`), `ticket.type`, "
    "`ticket.state`, `ticket.title`, `ticket.description`, `ticket.<attribute>`; the custom "
    "objects linked to the conversation or its end user: `object.<type>` (`exists`, "
    "`not_exists`) and `object.<type>.<field>` (any of them holds it). A ticket attribute, "
    "custom object type or attribute that does not exist is refused (422)."
)
CONDITION_EXAMPLES: list[Any] = [
    [
        {"field": "ticket.type", "op": "is", "value": "Refund"},
        {"field": "ticket.state", "op": "is_not", "value": "resolved"},
    ],
    [
        {"field": "object.Order.status", "op": "in", "value": ["delayed", "lost"]},
        {"field": "tag", "op": "is", "value": "Shipping"},
    ],
    [{"field": "ticket", "op": "not_exists"}, {"field": "object.Order", "op": "exists"}],
]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: RuleName
    position: Position | None = Field(
        default=None, description="Tried in ascending order; default last."
    )
    enabled: bool = Field(default=True, strict=True)
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=CONDITIONS_MAX,
        description=CONDITIONS_HELP,
        examples=CONDITION_EXAMPLES,
    )
    actions: Actions


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: RuleName | None = None
    position: Position | None = None
    enabled: bool | None = Field(default=None, strict=True)
    conditions: list[Condition] | None = Field(
        default=None, max_length=CONDITIONS_MAX, description=CONDITIONS_HELP
    )
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
    conditions: list[Condition] = Field(
        max_length=CONDITIONS_MAX, description=CONDITIONS_HELP, examples=CONDITION_EXAMPLES
    )
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
