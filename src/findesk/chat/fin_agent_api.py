"""Intercom's Fin Agent API for the chat: the calls findesk makes (``/fin/start``, ``/fin/reply``,
``/fin/csat``, sent by ``chat.delivery``) and the events Intercom sends to
``POST /chat/hooks/fin-agent-api`` (``fin_replied``, ``fin_status_updated``, ``csat_requested``).

Events are signed: ``X-Fin-Agent-API-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw
body>`` keyed with FINDESK_FIN_AGENT_API_WEBHOOK_SECRET (the bare hex is accepted too), checked
in constant time before anything is read.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy.orm import Session

from findesk.chat import service

PATHS = {"fin_start": "/fin/start", "fin_reply": "/fin/reply", "fin_csat": "/fin/csat"}
SIGNATURE_HEADER = "X-Fin-Agent-API-Webhook-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str | None, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    given = header.strip()
    given = given.removeprefix("sha256=").lower()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def handle(session: Session, event: dict[str, Any]) -> str:
    """Apply one event; what became of it (for the answer and the logs). An unknown event, or
    one about a conversation that is not the chat's, is acknowledged and ignored."""
    name = str(event.get("event_name") or "")
    conversation_id = str(event.get("conversation_id") or "")
    if not service.is_chat(session, conversation_id):
        return "ignored: not a chat conversation"
    if name == "fin_replied":
        message = event.get("message")
        if not isinstance(message, dict) or message.get("id") is None:
            return "ignored: no message"
        status = str(event.get("status") or "awaiting_user_reply")
        service.fin_message(
            session,
            conversation_id,
            external_id=str(message["id"]),
            body=str(message.get("body") or ""),
            state=status if status in service.FIN_STATES else None,
        )
        if status == "escalated":
            service.fin_escalated(session, conversation_id, None)
        return "stored"
    if name == "fin_status_updated":
        status = str(event.get("status") or "")
        if status == "escalated":
            reason = event.get("reason")
            service.fin_escalated(session, conversation_id, str(reason) if reason else None)
        elif status == "resolved":
            service.fin_resolved(session, conversation_id)
        else:
            service.fin_state(session, conversation_id, status)
        return f"status {status}"
    if name == "csat_requested":
        service.fin_asks_rating(session, conversation_id)
        return "rating requested"
    return f"ignored: unknown event {name!r}"
