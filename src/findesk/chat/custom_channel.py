"""Intercom's Custom Channel Events for the chat: the calls findesk makes
(``/custom_channel_events/notify_*``, sent by ``chat.delivery``) and the callbacks Intercom sends
to ``POST /chat/hooks/custom-channel``.

Intercom does not document the callbacks' payload, so findesk defines the shape it accepts (the
README documents it; the emulator sends exactly this)::

    {"event_id": "...", "event_type": "new_message|typing|quick_replies|attribute_request|
     resolution|handover|end", "external_conversation_id": "<findesk's id>",
     "conversation_id": "<Intercom's>", "created_at": "ISO 8601", "data": {...}}

with ``Authorization: Bearer <FINDESK_CUSTOM_CHANNEL_CALLBACK_TOKEN>`` (constant-time check;
missing or wrong: 401, nothing stored). A repeated ``event_id`` is ignored.
"""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy.orm import Session

from findesk.chat import service

PATHS = {
    "cc_new_conversation": "/custom_channel_events/notify_new_conversation",
    "cc_new_message": "/custom_channel_events/notify_new_message",
    "cc_quick_reply": "/custom_channel_events/notify_quick_reply_selected",
    "cc_attribute": "/custom_channel_events/notify_attribute_collected",
}
EVENT_TYPES = frozenset(
    {"new_message", "typing", "quick_replies", "attribute_request", "resolution", "handover", "end"}
)


def token_matches(expected: str | None, authorization: str | None) -> bool:
    if not expected or not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))


def handle(session: Session, event: dict[str, Any]) -> str:
    event_id = event.get("event_id")
    event_type = str(event.get("event_type") or "")
    conversation_id = str(event.get("external_conversation_id") or "")
    if not event_id:
        return "ignored: no event_id"
    if not service.is_chat(session, conversation_id):
        return "ignored: not a chat conversation"
    if not service.first_time(session, f"custom_channel:{event_id}"):
        return "ignored: seen already"
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    service.note_intercom_id(session, conversation_id, _str(event.get("conversation_id")))
    if event_type in ("new_message", "quick_replies"):
        message = data.get("message")
        if not isinstance(message, dict):
            return "ignored: no message"
        options = data.get("options") if event_type == "quick_replies" else None
        service.fin_message(
            session,
            conversation_id,
            external_id=str(message.get("id") or event_id),
            body=str(message.get("body") or ""),
            quick_replies=options if isinstance(options, list) else None,
        )
        return "stored"
    if event_type == "typing":
        service.fin_typing(session, conversation_id)
        return "typing"
    if event_type == "attribute_request":
        attribute = data.get("attribute")
        if not isinstance(attribute, dict) or attribute.get("id") is None:
            return "ignored: no attribute"
        service.fin_asks_attribute(
            session,
            conversation_id,
            external_id=f"attribute:{event_id}",
            attribute=attribute,
            prompt=str(data.get("prompt") or ""),
        )
        return "attribute requested"
    if event_type == "resolution":
        if data.get("state") == "feedback_requested":
            service.fin_asks_rating(session, conversation_id)
            return "rating requested"
        service.fin_resolved(session, conversation_id)
        return "resolved"
    if event_type == "handover":
        reason = data.get("reason")
        service.fin_escalated(session, conversation_id, str(reason) if reason else None)
        return "handed over"
    if event_type == "end":
        service.fin_state(session, conversation_id, "complete")
        return "ended"
    return f"ignored: unknown event type {event_type!r}"


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
