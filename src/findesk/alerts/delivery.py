"""Sending alert deliveries for the outbox's worker (``notifier.worker``): what a claimed group
of alert events becomes (``prepare``, in the claim's transaction) and sending it (``send``).

Webhooks are signed as Standard Webhooks (standardwebhooks.com) says: ``webhook-id`` (the same on
every attempt), ``webhook-timestamp`` (seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256
of "id.timestamp.body">`` keyed with the secret's bytes after ``whsec_``.

Emails go with the standard library's ``smtplib`` (STARTTLS or TLS as configured). An SMTP 5xx
answer is permanent (dead-letter); anything else is retried with the outbox's back-off. A crash
after the server took an email and before the outbox recorded it sends it again (at least once);
the ``Message-ID`` is the same on every attempt, so mail systems can tell.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from html import escape
from typing import Any

import httpx
from sqlalchemy.orm import Session

from findesk.alerts import repository, service
from findesk.conversations import repository as conversation_repository
from findesk.kit import html, urlguard
from findesk.kit.settings import Settings
from findesk.kit.timeutil import as_utc, utcnow
from findesk.notifier.models import OutboxEvent
from findesk.notifier.worker import Outcome, classify


@dataclass(frozen=True)
class WebhookCall:
    message_id: str
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class Skip:
    """Nothing to send, and done (a reply the end user has read meanwhile)."""

    why: str


@dataclass(frozen=True)
class Refused:
    """Nothing can ever be sent (the endpoint was removed): straight to dead-letter."""

    why: str


@dataclass(frozen=True)
class Mail:
    message_id: str
    email: service.Email


Prepared = WebhookCall | Mail | Skip | Refused


def prepare(session: Session, settings: Settings, key: str, events: list[OutboxEvent]) -> Prepared:
    kind = events[0].kind
    payloads = [json.loads(e.payload or "{}") for e in events]
    if kind == service.WEBHOOK:
        return _prepare_webhook(session, settings, key, payloads[0])
    if kind == service.EMAIL:
        return _prepare_email(key, payloads)
    if kind == service.REPLY_EMAIL:
        return _prepare_reply(session, settings, key, payloads[0])
    return Refused(f"unknown delivery kind {kind!r}")


def _prepare_webhook(
    session: Session, settings: Settings, key: str, payload: dict[str, Any]
) -> Prepared:
    endpoint = repository.endpoint(session, str(payload.get("endpoint_id")))
    if endpoint is None or not endpoint.active:
        return Refused("the webhook endpoint was removed")
    body = payload["body"]
    if endpoint.format == "slack":
        body = slack_message(body)
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return WebhookCall(key, endpoint.url, service.signing_secret(settings, endpoint), raw)


def _prepare_email(key: str, payloads: list[dict[str, Any]]) -> Prepared:
    if len(payloads) == 1:
        return Mail(key, service.Email(**payloads[0]))
    # A digest: the slot's alerts in one email, oldest first.
    to = payloads[0]["to"]
    subject = f"findesk: {len(payloads)} alerts"
    text = "\n\n----\n\n".join(p["text"] for p in payloads)
    body = "<hr>".join(p["html"] for p in payloads)
    return Mail(key, service.Email(to=to, subject=subject, text=text, html=body))


def _prepare_reply(
    session: Session, settings: Settings, key: str, payload: dict[str, Any]
) -> Prepared:
    message = conversation_repository.get_message(session, str(payload.get("message_id")))
    conversation = conversation_repository.get(session, str(payload.get("conversation_id")))
    if message is None or conversation is None:
        return Skip("the reply is gone")
    read_at = conversation.last_user_read_at
    if read_at is not None and as_utc(read_at) >= as_utc(message.created_at):
        return Skip("the end user has read the reply")
    to = conversation.user.email
    if not to:
        return Skip("the end user has no email address")
    body = html.sanitize(message.body or "")
    link = service.reply_link(settings, conversation.id)
    title = conversation.title or "your conversation"
    subject = " ".join(f"New reply: {title}".split())[:200]
    text = f"{html.to_text(body)}\n\nReply here: {link}\n"
    rendered = f'{body}<p><a href="{escape(link)}">Reply here</a></p>'
    return Mail(key, service.Email(to=to, subject=subject, text=text, html=rendered))


def slack_message(event: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (``text`` and ``blocks``) for an event."""
    data = event.get("data") or {}
    headline = {
        service.HANDED_OVER: "Fin handed over a conversation",
        service.ASSIGNED: "Conversation assigned",
        service.SLA_BREACHED: "SLA breached",
    }.get(str(event.get("type")), str(event.get("type")))
    title = _slack_escape(str(data.get("title") or "(no title)"))
    assignee = data.get("assignee") or {}
    who = f" to {_slack_escape(str(assignee.get('name')))}" if assignee else ""
    url = str(data.get("url") or "")
    text = f"{headline}{who}: <{url}|{title}>"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def _slack_escape(value: str) -> str:
    """Slack's control characters in text from people (``<`` would start a link or mention)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- signing -------------------------------------------------------------------------------------


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(call: WebhookCall, timestamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": call.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(call.secret, call.message_id, timestamp, call.body),
    }


# --- sending -------------------------------------------------------------------------------------


async def send(http: httpx.AsyncClient, settings: Settings, prepared: Prepared) -> Outcome:
    if isinstance(prepared, Skip):
        return Outcome(delivered=True, error=prepared.why)
    if isinstance(prepared, Refused):
        return Outcome(delivered=False, permanent=True, error=prepared.why)
    if isinstance(prepared, WebhookCall):
        return await _send_webhook(http, settings, prepared)
    return await asyncio.to_thread(send_email, settings, prepared)


async def _send_webhook(http: httpx.AsyncClient, settings: Settings, call: WebhookCall) -> Outcome:
    try:
        await asyncio.to_thread(
            urlguard.check, call.url, allow_loopback=settings.webhooks_allow_loopback
        )
    except urlguard.RefusedURL as exc:
        return Outcome(delivered=False, permanent=True, error=f"refused: {exc}")
    headers = signed_headers(call, int(time.time()))
    try:
        async with asyncio.timeout(settings.notifier_timeout_seconds):
            response = await http.post(call.url, content=call.body, headers=headers)
        return classify(response, utcnow())
    except (httpx.TimeoutException, TimeoutError) as exc:
        return Outcome(delivered=False, error=f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome(delivered=False, error=f"network: {type(exc).__name__}: {exc}")


def build_message(settings: Settings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.email.to
    message["Subject"] = mail.email.subject
    message["Date"] = formatdate(usegmt=True)
    domain = settings.smtp_from.rpartition("@")[2] or "findesk"
    message["Message-ID"] = f"<{mail.message_id}@{domain}>"
    message.set_content(mail.email.text)
    message.add_alternative(mail.email.html, subtype="html")
    return message


def send_email(settings: Settings, mail: Mail) -> Outcome:
    host = settings.smtp_host
    if not host:
        return Outcome(delivered=False, error="FINDESK_SMTP_HOST is not set")
    timeout = settings.notifier_timeout_seconds
    try:
        smtp: smtplib.SMTP
        if settings.smtp_tls:
            smtp = smtplib.SMTP_SSL(
                host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, settings.smtp_port, timeout=timeout)
        with smtp:
            if settings.smtp_starttls and not settings.smtp_tls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                password = (
                    settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                )
                smtp.login(settings.smtp_username, password)
            smtp.send_message(build_message(settings, mail))
        return Outcome(delivered=True)
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(delivered=False, permanent=True, error=f"smtp: recipient refused: {exc}")
    except smtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.smtp_code < 600
        return Outcome(delivered=False, permanent=permanent, error=f"smtp {exc.smtp_code}: {exc}")
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(delivered=False, error=f"smtp: {type(exc).__name__}: {exc}")
