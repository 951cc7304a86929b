"""Attributes as an agent reads and types them: labelled in words, Fin's own (``fin_*``) by
what they mean, dates as dates, links as links, yes and no for booleans; a value typed in the
inbox's form kept as the number or true/false it looks like."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from findesk.inbox.timeline import HANDOVER_REASONS
from findesk.kit.errors import Invalid

LABELS = {
    "fin_handover_reason": "Why Fin handed over",
    "fin_resolution": "Fin's outcome",
    "fin_source_title": "Fin's source",
    "fin_source_url": "Fin's source link",
    "fin_unanswered_turns": "Questions Fin could not answer",
}
VALUES: dict[str, dict[str, str]] = {
    "fin_handover_reason": {k: v[0].upper() + v[1:] for k, v in HANDOVER_REASONS.items()},
    "fin_resolution": {
        "answered": "Answered",
        "unanswered": "Not answered",
        "handed_over": "Handed over",
    },
}
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
# A number under a key like signed_up_at is a Unix time, as Intercom sends dates.
TIME_KEY = re.compile(r"(_at|_date|_on)$")
UNIX_RANGE = (10**8, 10**10)  # 1973 to 2286: seconds, not an amount


@dataclass(frozen=True)
class Shown:
    key: str
    label: str
    text: str
    when: str | None = None  # ISO time, for <time datetime>
    url: str | None = None  # an http(s) link


def label(key: str) -> str:
    """``order_id`` reads "Order id", ``signedUpAt`` "Signed up at"."""
    if key in LABELS:
        return LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").replace("-", " ")
    words = " ".join(words.split()).lower()
    return words[:1].upper() + words[1:] if words else key


def _date_text(moment: datetime) -> tuple[str, str]:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if (moment.hour, moment.minute, moment.second) == (0, 0, 0):
        return moment.date().isoformat(), f"{moment:%-d %b %Y}"
    return moment.isoformat(), f"{moment:%-d %b %Y, %H:%M} UTC"


def shown(key: str, value: Any) -> Shown:
    name = label(key)
    if isinstance(value, bool):
        return Shown(key, name, "Yes" if value else "No")
    if isinstance(value, int | float):
        if TIME_KEY.search(key) and UNIX_RANGE[0] <= value < UNIX_RANGE[1]:
            when, text = _date_text(datetime.fromtimestamp(value, UTC))
            return Shown(key, name, text, when=when)
        return Shown(key, name, f"{value:,}" if isinstance(value, int) else str(value))
    if isinstance(value, str):
        if value in VALUES.get(key, {}):
            return Shown(key, name, VALUES[key][value])
        if ISO_DATE.fullmatch(value):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return Shown(key, name, value)
            when, text = _date_text(moment)
            return Shown(key, name, text, when=when)
        if re.match(r"https?://", value, re.IGNORECASE):
            return Shown(key, name, value, url=value)
        return Shown(key, name, value)
    if isinstance(value, list):
        return Shown(key, name, ", ".join(str(item) for item in value))
    return Shown(key, name, str(value))


def rows(attributes: dict[str, Any] | None) -> list[Shown]:
    """The attributes worth a line (not the empty ones), Fin's after the others."""
    present = [(k, v) for k, v in (attributes or {}).items() if v not in (None, "", [])]
    present.sort(key=lambda item: (item[0].startswith("fin_"), label(item[0]).lower()))
    return [shown(key, value) for key, value in present]


def typed(text: str) -> str | int | float | bool:
    """A value as typed in the form: ``true``/``false``, a number, or the text itself."""
    if not text:
        raise Invalid("Give the attribute a value, or remove it.")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    if re.fullmatch(r"-?\d{1,15}\.\d{1,15}", text):
        return float(text)
    return text
