"""Wire types shared by the HTTP APIs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from findesk.kit.text import EMAIL_MAX, URL_MAX, text_problem
from findesk.kit.timeutil import as_utc, isoformat

# ISO 8601 UTC with milliseconds and Z, e.g. 2025-10-27T14:30:00.000Z
Timestamp = Annotated[
    datetime,
    PlainSerializer(isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def check_email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > EMAIL_MAX:
        raise ValueError(f"an email address has at most {EMAIL_MAX} characters")
    if not _EMAIL.match(value) or text_problem(value) is not None:
        raise ValueError("not a valid email address")
    return value


def check_http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > URL_MAX:
        raise ValueError(f"a URL has at most {URL_MAX} characters")
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, re.IGNORECASE) or text_problem(value):
        raise ValueError("must be an http or https URL")
    return value


def _utc(value: datetime | None) -> datetime | None:
    try:
        return None if value is None else as_utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("out of range once converted to UTC") from None


# RFC 3339 (JSON Schema's `date-time`), as documented; not pydantic's lax extras such as Unix
# times (0, "1700000000") or dates without a time.
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    raise ValueError("must be an RFC 3339 date-time, e.g. 2025-10-27T14:30:00.000Z")


Email = Annotated[
    str,
    Field(max_length=EMAIL_MAX, json_schema_extra={"format": "email"}),
    AfterValidator(check_email),
]
HttpUrl = Annotated[
    str,
    Field(max_length=URL_MAX, json_schema_extra={"format": "uri"}),
    AfterValidator(check_http_url),
]
UTCInput = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_utc)]
Id = Annotated[str, Field(min_length=1, max_length=255)]
Attributes = dict[str, Any]


class ProblemOut(BaseModel):
    """An RFC 7807 problem."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No conversation with id 'conv_x'."])
    code: str = Field(examples=["not_found"], description="Stable machine-readable reason.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field details of a validation error."
    )
