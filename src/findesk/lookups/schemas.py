"""Shapes of lookups: what an administrator defines (checked here as far as the shape goes; the
service checks it against the object types), and the inputs a call carries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

INPUT_TYPES = ("string", "integer", "decimal", "boolean")
InputType = Literal["string", "integer", "decimal", "boolean"]
Kind = Literal[
    "object_by_external_id", "object_by_attribute", "user_open_tickets", "conversation_ticket_state"
]
AUDIENCES = ("leads", "users", "visitors")
Audience = Literal["leads", "users", "visitors"]
# A name that is safe in a URL template and as a JSON key: lower case, digits, underscores.
SAFE_NAME = r"^[a-z][a-z0-9_]{0,39}$"
# The context variables every call may carry: no input may take these names.
CONTEXT_VARIABLES = ("user_id", "conversation_id")
# What the ticket kinds can return, for each ticket.
TICKET_FIELDS = ("ticket_id", "type", "state", "open", "title", "updated_at")
RATE_LIMIT_MAX = 100_000
INPUT_VALUE_MAX = 255
ATTRIBUTE_MATCHES_MAX = 20

Text1 = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LookupInput(_In):
    """One of Intercom's data inputs."""

    name: Annotated[str, Field(pattern=SAFE_NAME)]
    type: InputType = "string"
    description: Annotated[str, Field(max_length=1000)] = ""
    required: bool = True


class LookupField(_In):
    """A field the lookup returns; a redacted one is returned masked."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    redacted: bool = False


class LookupIn(_In):
    name: Text1
    description: Annotated[str, Field(min_length=1, max_length=2000)]
    kind: Kind
    object_type: Annotated[str | None, Field(max_length=64)] = None
    attribute: Annotated[str | None, Field(max_length=64)] = None
    inputs: Annotated[list[LookupInput], Field(max_length=10)] = Field(default_factory=list)
    fields: Annotated[list[LookupField], Field(min_length=1, max_length=50)]
    summary_field: Annotated[str | None, Field(max_length=64)] = None
    user_scoped: bool = True
    direct_fin_usage: bool = True
    audiences: Annotated[list[Audience], Field(min_length=1)] = Field(
        default_factory=lambda: list[Audience](["users"])
    )
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=RATE_LIMIT_MAX)] = 600
    enabled: bool = True
