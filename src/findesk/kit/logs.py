"""Logging: one JSON object a line, so that each delivery attempt can be searched by field."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from findesk.kit.timeutil import isoformat, utcnow

_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL without what may be a secret: userinfo, query values and the fragment become
    ``***`` (a webhook URL or a token in a query string must not reach the logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{key}=***" if sep else key
        for key, sep, _ in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


def redact(text: str) -> str:
    """Every URL in ``text``, redacted."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line; every URL in the message, the fields and a traceback is
    redacted (``redact_url``), whoever logged it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": isoformat(utcnow()),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(
                {
                    k: redact(v) if isinstance(v, str) else v
                    for k, v in fields.items()
                    if v is not None
                }
            )
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    """findesk's own loggers write JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("findesk")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
