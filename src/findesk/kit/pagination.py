"""Keyset pagination cursors: opaque to clients, (timestamp, id) inside."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from findesk.kit.errors import Invalid
from findesk.kit.timeutil import as_utc


def encode_cursor(at: datetime, conversation_id: str) -> str:
    raw = json.dumps([at.isoformat(), conversation_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, conversation_id = json.loads(raw)
        return as_utc(datetime.fromisoformat(at)), str(conversation_id)
    # OverflowError: a crafted date near year 1 or 9999 whose offset leaves the datetime range.
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        raise Invalid("The cursor is not valid.") from None
