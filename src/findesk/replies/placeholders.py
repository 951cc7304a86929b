"""Placeholders in saved replies: ``{{user.name}}``, ``{{agent.alias}}``,
``{{conversation.attributes.plan}}``, each with an optional fallback (``{{user.name|there}}``).

A small substitution, never a template engine: the text is agents' input. Names are checked
when a reply is saved (``check``), so an unknown one is refused then, not found empty later.
Values are HTML-escaped as they go into the (sanitised) HTML body; a missing value renders as
its fallback, or as nothing.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from findesk.kit.errors import Invalid

# Every ``{{ ... }}``; ``_NAME`` says whether what is inside is a placeholder.
_ANY = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_INNER = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)\s*(?:\|(?P<fallback>[^{}|]*))?$")
ATTRIBUTE_PREFIX = "conversation.attributes."
NAMES = (
    "user.name",
    "user.email",
    "agent.name",
    "agent.alias",
    "agent.email",
    "conversation.id",
    "conversation.title",
)
HELP = ", ".join(f"{{{{{name}}}}}" for name in NAMES) + ", {{conversation.attributes.KEY}}"


@dataclass(frozen=True)
class Values:
    """What placeholders are filled with, for one conversation and one agent."""

    fields: Mapping[str, str | None]
    attributes: Mapping[str, Any]

    def get(self, name: str) -> str | None:
        if name.startswith(ATTRIBUTE_PREFIX):
            value = self.attributes.get(name[len(ATTRIBUTE_PREFIX) :])
            if value is None:
                return None
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, dict | list):
                return json.dumps(value, ensure_ascii=False)
            return str(value)
        return self.fields.get(name)


def _known(name: str) -> bool:
    return name in NAMES or (
        name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX)
    )


def problems(text: str) -> list[str]:
    """What is wrong with the placeholders of ``text``: one sentence each."""
    found: list[str] = []
    for match in _ANY.finditer(text):
        inner = _INNER.match(match.group(1))
        if inner is None:
            found.append(f"“{match.group(0)}” is not a placeholder")
        elif not _known(inner.group("name")):
            found.append(f"“{{{{{inner.group('name')}}}}}” is not a known placeholder")
    return found


def check(text: str, *, field: str = "body") -> None:
    """Refuse (``Invalid``) text with an unknown or malformed placeholder."""
    found = problems(text)
    if found:
        detail = "; ".join(found) + f". Placeholders are {HELP}."
        raise Invalid(
            detail,
            errors=[
                {"field": field, "message": detail, "loc": ["body", field], "type": "placeholder"}
            ],
        )


def render(text: str, values: Values) -> str:
    """``text`` (HTML) with each placeholder replaced by its escaped value, or its fallback."""

    def fill(match: re.Match[str]) -> str:
        inner = _INNER.match(match.group(1))
        if inner is None or not _known(inner.group("name")):
            return match.group(0)  # checked at save time; left as written if not
        value = values.get(inner.group("name"))
        if value is None or value == "":
            return (inner.group("fallback") or "").strip()  # already HTML, from the body
        return html.escape(value, quote=True)

    return _ANY.sub(fill, text)
