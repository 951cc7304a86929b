"""Calls to Intercom for the chat, for the outbox's worker (``notifier.worker``): what a claimed
chat event becomes (``prepare``, in the claim's transaction) and sending it (``send``).

One event a delivery, oldest first: a conversation's calls reach Intercom in the order the
visitor wrote (the worker claims a conversation's next event only once the one before it was
delivered or given up). A failed call is retried with the outbox's back-off; Intercom being
down loses nothing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session

from findesk import __version__
from findesk.chat import custom_channel, fin_agent_api, service
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.notifier.models import OutboxEvent
from findesk.notifier.worker import Outcome, classify


@dataclass(frozen=True)
class Call:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class NotReady:
    """Not sendable now (the channel's token is not set): retried with back-off."""

    why: str


@dataclass(frozen=True)
class Refused:
    why: str


Prepared = Call | NotReady | Refused


def prepare(session: Session, settings: Settings, event: OutboxEvent) -> Prepared:
    body = json.loads(event.payload or "{}")
    call = event.reason
    if call in fin_agent_api.PATHS:
        token = settings.fin_agent_api_token
        path = fin_agent_api.PATHS[call]
        if token is None:
            return NotReady("FINDESK_FIN_AGENT_API_TOKEN is not set")
    elif call in custom_channel.PATHS:
        token = settings.custom_channel_token
        path = custom_channel.PATHS[call]
        if token is None:
            return NotReady("FINDESK_CUSTOM_CHANNEL_TOKEN is not set")
        body["event_id"] = f"fde_{event.id}"  # unique per event, the same on every attempt
    else:
        return Refused(f"unknown chat call {call!r}")
    headers = {
        "Authorization": f"Bearer {token.get_secret_value()}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Intercom-Version": settings.intercom_version,
        "User-Agent": f"findesk/{__version__}",
    }
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Call(f"{settings.intercom_api_base}{path}", headers, raw)


async def send(http: httpx.AsyncClient, settings: Settings, prepared: Prepared) -> Outcome:
    if isinstance(prepared, Refused):
        return Outcome(delivered=False, permanent=True, error=prepared.why)
    if isinstance(prepared, NotReady):
        return Outcome(delivered=False, error=prepared.why)
    try:
        async with asyncio.timeout(settings.notifier_timeout_seconds):
            response = await http.post(
                prepared.url, content=prepared.body, headers=prepared.headers
            )
        return classify(response, utcnow())
    except (httpx.TimeoutException, TimeoutError) as exc:
        return Outcome(delivered=False, error=f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome(delivered=False, error=f"network: {type(exc).__name__}: {exc}")


def gave_up(session: Session, conversation_id: str, error: str) -> None:
    """A call to Intercom will never go through (refused, or retried for the whole window):
    Fin cannot answer this conversation, so a person does (it waits in the inbox's queue)."""
    service.intercom_gave_up(session, conversation_id, error)
