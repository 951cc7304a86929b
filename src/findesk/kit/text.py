"""The rules for text sent to findesk, whichever way it comes in: the Fin API, the agent API, the
inbox's forms or the command line. One limit per kind of field, each within its database column
(a longer value must never reach PostgreSQL), and the characters no stored text may hold.

Services call ``clean_text``: forms and the CLI reach them without pydantic. The APIs' schemas
use the same limits through the annotated types below, so that their OpenAPI documents state the
rules and a bad request is refused before it reaches a service.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic.fields import FieldInfo

from findesk.kit.errors import Invalid

# Limits in characters, one per kind of field.
NAME_MAX = 255  # an agent's name and alias, an end user's name, an OAuth client's name
EMAIL_MAX = 320
URL_MAX = 2048
TAG_MAX = 255
TAGS_MAX = 100  # tags on one conversation
CONVERSATION_TITLE_MAX = 1024
ARTICLE_TITLE_MAX = 255
TOKEN_LABEL_MAX = 255
ATTRIBUTE_KEY_MAX = 255
MESSAGE_BODY_MAX = 512 * 1024  # HTML as sent, before sanitising
ARTICLE_BODY_MAX_BYTES = 512 * 1024  # the source, in UTF-8

# C0 control characters and DEL are refused in every field, except tab, line feed and carriage
# return: multi-line text keeps them, and a one-line field turns each into a space (a title
# pasted with a line break is not worth refusing). NUL cannot be stored by PostgreSQL at all.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINE_BREAK = re.compile("[\t\n\r]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # e.g. undecodable bytes of a command-line argument
# The same rule as a JSON Schema pattern, for the APIs' documents.
TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*$"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a control character, broken Unicode), or None."""
    found = _CONTROL.search(value)
    if found is not None:
        return f"must not contain control characters (found U+{ord(found.group()):04X})"
    if _SURROGATE.search(value) is not None:
        return "is not valid Unicode text"
    return None


def without_controls(value: str) -> str:
    """``value`` without the control characters no field may hold (for text that is cleaned
    rather than refused, as HTML is)."""
    return _CONTROL.sub("", value)


def invalid(detail: str, *, field: str) -> Invalid:
    """A refused field: the shape the inbox's forms show next to the field."""
    return Invalid(detail, errors=[{"field": field, "message": detail}])


def clean_text(
    value: str,
    *,
    field: str,
    max_length: int,
    label: str | None = None,
    multiline: bool = False,
) -> str:
    """``value`` as it is stored, or ``Invalid``. One-line text is trimmed, its tabs and line
    breaks made spaces; multi-line text is kept as it is. ``label`` names the field in the
    message (``field`` by default)."""
    label = label or field
    problem = text_problem(value)
    if problem is not None:
        raise invalid(f"{label} {problem}.", field=field)
    if not multiline:
        value = _LINE_BREAK.sub(" ", value).strip()
    if len(value) > max_length:
        raise invalid(
            f"{label} must be at most {max_length} characters (it has {len(value)}).", field=field
        )
    return value


def clean_optional(
    value: str | None, *, field: str, max_length: int, label: str | None = None
) -> str | None:
    """One-line text that may be left out: None, or blank, is None."""
    if value is None:
        return None
    return clean_text(value, field=field, max_length=max_length, label=label) or None


# --- for the APIs' schemas -------------------------------------------------------------------


def _storable(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def limited(max_length: int) -> FieldInfo:
    """A string field's limit, with the characters rule stated in the schema (``STORABLE``
    enforces it): ``Annotated[str, limited(N), STORABLE]``."""
    info: FieldInfo = Field(max_length=max_length, json_schema_extra={"pattern": TEXT_PATTERN})
    return info


STORABLE = AfterValidator(_storable)

NameText = Annotated[str, limited(NAME_MAX), STORABLE]
TagText = Annotated[str, limited(TAG_MAX), STORABLE]
ConversationTitleText = Annotated[str, limited(CONVERSATION_TITLE_MAX), STORABLE]
AttributeKey = Annotated[str, limited(ATTRIBUTE_KEY_MAX), STORABLE]
# Attributes as sent: free-form values, keys held to the rules of a one-line field (stated as
# propertyNames: pydantic would state a key's pattern as patternProperties, which allows any key).
AttributesIn = Annotated[
    dict[AttributeKey, Any],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"maxLength": ATTRIBUTE_KEY_MAX, "pattern": TEXT_PATTERN},
            "additionalProperties": True,
        }
    ),
]
