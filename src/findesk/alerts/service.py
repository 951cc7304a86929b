"""Alerts: what is queued, in the transaction of the change, when a conversation is handed over
or assigned (and, for the SLA code, breached), and when a human's reply may go unread.

Everything queued here is an outbox event of an alert kind (``alerts.delivery`` sends it): the
outbox's worker delivers it with its leases, retries, back-off, dead-letter and replay. Fin's
own deliveries are untouched: an alert event's ``conversation_id`` is its own grouping key.

* ``webhook``: one event per endpoint and message; its key is the Standard Webhooks
  ``webhook-id`` (``msg_…``), the same on every attempt and on a replay.
* ``email``: an alert email. At once: a key of its own. In a digest: the key names the agent
  and the digest's slot (``dg_…``), and the event is due when the slot ends, so the worker
  claims the slot's emails together and sends them as one.
* ``reply_email``: a human's public reply, due ``FINDESK_REPLY_EMAIL_DELAY_MINUTES`` after it
  was written; the worker checks then whether the end user has read it (and sends nothing if
  so). Its key is the message's id: once per reply.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.alerts import repository
from findesk.alerts.models import AlertPreference, WebhookEndpoint
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, Message
from findesk.kit import ids, serverkey, urlguard
from findesk.kit.actor import Actor
from findesk.kit.errors import Invalid, NotFound
from findesk.kit.settings import Settings
from findesk.kit.settings_in_use import current_settings
from findesk.kit.timeutil import isoformat, utcnow
from findesk.notifier.models import OutboxEvent
from findesk.notifier.service import recorded

HANDED_OVER = "conversation.handed_over"
ASSIGNED = "conversation.assigned"
SLA_BREACHED = "sla.breached"
EVENTS = (HANDED_OVER, ASSIGNED, SLA_BREACHED)
FORMATS = ("json", "slack")

WEBHOOK, EMAIL, REPLY_EMAIL = "webhook", "email", "reply_email"
ENDPOINT_PREFIX = "whe"
DIGEST_MINUTES_MAX = 24 * 60


# --- webhook endpoints ---------------------------------------------------------------------------


SIGNING_PURPOSE = "webhook-signing"


def signing_secret(settings: Settings, endpoint: WebhookEndpoint) -> str:
    """The endpoint's Standard Webhooks secret: ``whsec_`` and 32 bytes in base64, derived
    from the server's key and the endpoint's nonce (``kit.serverkey``)."""
    key = serverkey.derived(settings, SIGNING_PURPOSE, endpoint.secret_nonce)
    return "whsec_" + base64.b64encode(key).decode()


def create_endpoint(
    session: Session,
    settings: Settings,
    *,
    url: str,
    events: Sequence[str],
    format: str,
    created_by: str | None,
) -> WebhookEndpoint:
    """Register an endpoint; its ``signing_secret`` is for the caller to show once."""
    unknown = sorted(set(events) - set(EVENTS))
    if not events or unknown:
        raise Invalid(
            f"Events must be some of {', '.join(EVENTS)}.",
            errors=[{"loc": ["events"], "msg": "unknown event", "type": "event"}],
        )
    if format not in FORMATS:
        raise Invalid(f"The format must be one of {', '.join(FORMATS)}.")
    urlguard.checked(url, allow_loopback=settings.webhooks_allow_loopback)
    endpoint = WebhookEndpoint(
        id=ids.new_id(ENDPOINT_PREFIX),
        url=url,
        events=list(dict.fromkeys(events)),
        format=format,
        secret_nonce=secrets.token_hex(16),
        active=True,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(endpoint)
    return endpoint


def list_endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    return repository.endpoints(session)


def delete_endpoint(session: Session, endpoint_id: str) -> None:
    """Remove it: deliveries still queued for it go to dead-letter when their turn comes."""
    endpoint = repository.endpoint(session, endpoint_id)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint with id {endpoint_id!r}.")
    session.delete(endpoint)


def conversation_link(settings: Settings, conversation_id: str) -> str:
    return f"{settings.base_url}/inbox/conversations/{conversation_id}"


def _conversation_data(
    settings: Settings, conversation: Conversation, assignee: Agent | None
) -> dict[str, Any]:
    return {
        "conversation_id": conversation.id,
        "title": conversation.title,
        "status": conversation.status,
        "assignee": {"id": assignee.id, "name": assignee.name, "email": assignee.email}
        if assignee is not None
        else None,
        "team_id": conversation.team_id,
        "tags": conversation.tags,
        "priority": (conversation.attributes or {}).get(conversations.PRIORITY_ATTRIBUTE),
        "url": conversation_link(settings, conversation.id),
    }


def record_webhooks(session: Session, event_type: str, data: dict[str, Any]) -> int:
    """Queue ``event_type`` for every active endpoint that subscribed to it; how many."""
    count = 0
    timestamp = isoformat(utcnow())
    for endpoint in repository.active_endpoints(session):
        if event_type not in endpoint.events:
            continue
        message_id = ids.new_id("msg")
        body = {"type": event_type, "timestamp": timestamp, "data": data}
        session.add(
            OutboxEvent(
                conversation_id=message_id,
                reason=event_type,
                kind=WEBHOOK,
                payload=json.dumps({"endpoint_id": endpoint.id, "body": body}),
            )
        )
        count += 1
    if count:
        recorded.mark(session)
    return count


# --- emails --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str

    def as_payload(self) -> dict[str, str]:
        return {"to": self.to, "subject": self.subject, "text": self.text, "html": self.html}


def preferences(session: Session, agent_id: str) -> AlertPreference:
    """The agent's preferences, or the defaults (assignments at once, no handovers)."""
    found = repository.preference(session, agent_id)
    if found is not None:
        return found
    return AlertPreference(
        agent_id=agent_id, email_handover=False, email_assigned=True, digest_minutes=None
    )


def set_preferences(
    session: Session,
    agent_id: str,
    *,
    email_handover: bool,
    email_assigned: bool,
    digest_minutes: int | None,
) -> AlertPreference:
    if digest_minutes is not None and not 1 <= digest_minutes <= DIGEST_MINUTES_MAX:
        raise Invalid(
            f"A digest is sent every 1 to {DIGEST_MINUTES_MAX} minutes.",
            errors=[{"loc": ["digest_minutes"], "msg": "out of range", "type": "range"}],
        )
    found = repository.preference(session, agent_id)
    if found is None:
        found = AlertPreference(agent_id=agent_id)
        session.add(found)
    found.email_handover = email_handover
    found.email_assigned = email_assigned
    found.digest_minutes = digest_minutes
    found.updated_at = utcnow()
    return found


def digest_slot_end(now: datetime, minutes: int) -> datetime:
    """The end of the digest slot ``now`` falls in: slots of ``minutes`` from the epoch."""
    period = minutes * 60
    seconds = int(now.timestamp())
    return datetime.fromtimestamp((seconds // period + 1) * period, UTC)


def queue_email(session: Session, email: Email, *, digest_for: AlertPreference | None) -> None:
    """Queue an alert email: at once, or in the agent's current digest slot."""
    now = utcnow()
    due = now
    if digest_for is not None and digest_for.digest_minutes:
        due = digest_slot_end(now, digest_for.digest_minutes)
        digest = f"{digest_for.agent_id}:{int(due.timestamp())}".encode()
        key = "dg_" + hashlib.sha256(digest).hexdigest()[:32]
    else:
        key = ids.new_id("eml")
    session.add(
        OutboxEvent(
            conversation_id=key,
            reason="email",
            kind=EMAIL,
            payload=json.dumps(email.as_payload()),
            created_at=now,
            next_attempt_at=due,
        )
    )
    recorded.mark(session)


def _alert_email(
    settings: Settings, to: str, headline: str, conversation: Conversation, detail: str
) -> Email:
    """An alert's email: everything from the conversation is escaped, never rendered."""
    title = conversation.title or "(no title)"
    link = conversation_link(settings, conversation.id)
    subject = " ".join(f"{headline}: {title}".split())[:200]
    text = f"{headline}\n\n{title}\n{detail}\n\nOpen it in findesk: {link}\n"
    html = (
        f"<p><b>{escape(headline)}</b></p><p>{escape(title)}</p><p>{escape(detail)}</p>"
        f'<p><a href="{escape(link)}">Open it in findesk</a></p>'
    )
    return Email(to=to, subject=subject, text=text, html=html)


def _email_assignee(
    session: Session, settings: Settings, conversation: Conversation, headline: str, detail: str
) -> None:
    assignee = conversation.assignee
    if assignee is None or assignee.is_bot or not assignee.active:
        return
    prefs = preferences(session, assignee.id)
    if not prefs.email_assigned:
        return
    email = _alert_email(settings, assignee.email, headline, conversation, detail)
    queue_email(session, email, digest_for=prefs)


def after_owner_change(
    session: Session, conversation: Conversation, kind: str, actor: Actor
) -> None:
    """Handovers and assignments: webhooks, and emails to who asked for them."""
    if kind not in ("handover", "assigned", "take_over"):
        return
    settings = current_settings()
    assignee = conversation.assignee
    reason = (conversation.attributes or {}).get(conversations.HANDOVER_REASON_ATTRIBUTE)
    if kind == "handover":
        # Routing has run: the data names the team and the agent it chose, if any.
        record_webhooks(session, HANDED_OVER, _conversation_data(settings, conversation, assignee))
        if settings.smtp_host:
            detail = f"Fin handed it over: {reason}" if reason else "Fin handed it over."
            if assignee is not None:
                detail += f" It is {assignee.name}'s."
            recipients = repository.agents_wanting_handovers(session, conversation.team_id)
            for agent, prefs in recipients:
                if agent.id == conversation.assignee_id:
                    continue  # told it is theirs, below
                email = _alert_email(
                    settings, agent.email, "Waiting for a human", conversation, detail
                )
                queue_email(session, email, digest_for=prefs)
        if assignee is None:
            return
    data = _conversation_data(settings, conversation, assignee)
    data["assigned_by"] = actor.agent_id
    record_webhooks(session, ASSIGNED, data)
    # Nobody needs an email about taking a conversation themselves.
    if settings.smtp_host and kind != "take_over" and actor.agent_id != conversation.assignee_id:
        if kind == "handover":
            detail = f"Fin handed it over to you: {reason}" if reason else "Fin handed it over."
        else:
            by = agent_repository.get(session, actor.agent_id) if actor.agent_id else None
            detail = f"Assigned to you by {by.name}." if by is not None else "Assigned to you."
        _email_assignee(session, settings, conversation, "Assigned to you", detail)


def raise_sla_breach(
    session: Session, conversation: Conversation, target: str, detail: dict[str, Any]
) -> None:
    """For the SLA code, in the transaction that records the breach: the ``sla.breached``
    webhook, and an email to the assignee (as an assignment alert: same preference)."""
    settings = current_settings()
    data = _conversation_data(settings, conversation, conversation.assignee)
    data |= {"target": target, "detail": detail}
    record_webhooks(session, SLA_BREACHED, data)
    if settings.smtp_host:
        _email_assignee(session, settings, conversation, "SLA breached", f"Target: {target}.")


# --- reply continuity ----------------------------------------------------------------------------


def after_public_reply(
    session: Session, conversation: Conversation, message: Message, actor: Actor
) -> None:
    """Queue the reply's email, due after the delay; the worker then checks it is unread."""
    settings = current_settings()
    if not settings.smtp_host:
        return
    now = utcnow()
    session.add(
        OutboxEvent(
            conversation_id=message.id,
            reason="reply_email",
            kind=REPLY_EMAIL,
            payload=json.dumps({"message_id": message.id, "conversation_id": conversation.id}),
            created_at=now,
            next_attempt_at=now + timedelta(minutes=settings.reply_email_delay_minutes),
        )
    )
    recorded.mark(session)


def reply_link(settings: Settings, conversation_id: str) -> str:
    template = settings.reply_email_link_url
    if template:
        return template.replace("{conversation_id}", conversation_id)
    return settings.base_url


conversations.on_owner_change(after_owner_change)
conversations.on_public_reply(after_public_reply)
