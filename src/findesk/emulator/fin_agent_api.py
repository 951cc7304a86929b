"""Intercom's Fin Agent API, emulated: ``/fin/start``, ``/fin/reply``, ``/fin/csat`` and the events
Fin sends back by webhook (Intercom's Fin Agent API guides; ``shared/spec/intercom-api.md`` 3b).

Requests
    * ``Authorization: Bearer <the Fin Agent API key>`` (``EmulatorConfig.fin_agent_token``; none
      configured: every call is 401). ``Intercom-Version`` optional (2.14 when absent); the API
      exists from 2.14, so an older or unknown version is 400 ``intercom_version_invalid``.
      Rate limit as the emulator's other APIs (429). Errors are Intercom's ``error.list``.
    * ``start``: ``conversation_id``, ``message`` ``{author, body, timestamp}`` (the message Fin
      answers: author ``user``), ``user`` ``{id, name?, email?, attributes?}``, ``attachments?``,
      ``conversation_metadata?`` ``{history?, attributes?}``. ``reply``: the same without the
      metadata (ignored if sent). Missing fields are 400 ``parameter_not_found``, malformed
      ones 400 ``parameter_invalid`` (both name the ``field``); over the documented limits (10
      attachments, 10 history messages, 10 user or conversation attributes) 422
      ``parameter_invalid``. An attribute whose value is not a string, number, boolean or null
      is not applied and is reported in the answer's ``errors`` as Intercom does.
    * *Decisions:* a message with the ``timestamp`` of one already taken on that conversation
      less than 5 minutes ago is a duplicate (Intercom dedupes on it): the first answer is
      repeated and Fin does not run again. ``reply`` on a conversation Fin never started is 404
      ``not_found``; on one whose workflow is ``complete`` (escalated or resolved) it is 422
      ``conversation_complete``, since control is back with the client (``start`` runs Fin
      again on it). ``csat``: ``conversation_id`` (known, else 404), ``rating``
      (``terrible|bad|ok|good|amazing``), ``remark?``; answered ``{conversation_id, user_id,
      status, rating, remark, created_at_ms}``.
    * ``start``/``reply`` answer at once ``{conversation_id, user_id, status: "thinking",
      created_at_ms}`` (``user_id`` is the ``user.id`` given: Intercom's ``user_id``).

Fin's turn (the emulator's answerer, on the transcript the emulator keeps), then its events, in
order, to the webhook URL of the configuration:

* an answer from the content library (cited) or a "couldn't find" reply: ``fin_replied``
  (with a ``stream_id``), then ``fin_status_updated`` ``awaiting_user_reply`` (the done signal);
* a request for a person, or nothing to answer from: ``fin_replied`` (the handover sentence),
  ``fin_status_updated`` ``escalated`` with Intercom's ``reason`` (``Escalation requested by
  user``; ``Conversation finished without resolution`` when nothing matched), then ``complete``;
* a thank-you after an answer: ``fin_replied``, ``resolved``, ``csat_requested`` (options
  ``terrible…amazing``), ``complete``.

``fin_replied`` carries ``status: replying`` when the call used ``Intercom-Version: Preview``,
else ``awaiting_user_reply`` (the stable versions' value). Deliveries carry
``X-Fin-Agent-API-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>`` and are retried with
back-off on a non-2xx answer (``channel_store.Deliverer``).
``GET /emulator/fin-agent/{conversation_id}`` (the emulator's admin token) shows what was received
and sent, with each delivery's attempts.

SSE (``EmulatorConfig.fin_agent_sse``): answers carry ``sse_subscription_url``
(``{public_url}/fin-agent/event-stream?channels=fin_agent_api:emulator:{id}&accessToken=…``, plus
``&rewind=2m`` on ``start``), a random token valid 3 minutes for that channel only. The stream
sends the same events as ``data:`` lines, a streamed answer first as ``fin_reply_chunk`` events
(the whole plain text so far, ``chunk_index`` from 0, the reply's ``stream_id``; SSE only), and
ends after ``awaiting_user_reply`` or ``complete``, which revokes the token (another connection
with it is 401). *Decision:* a stream replays the events since its call (since 2 minutes before
it with ``rewind``): the emulated Fin answers before any client could connect.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from findesk.emulator.channel_store import (
    ChatState,
    Deliverer,
    Delivery,
    FinBrain,
    FinTurn,
    IntercomGate,
    Lanes,
    at_most,
    hex_id,
    iso_ms,
    numeric_id,
    object_field,
    optional_text,
    plain_text,
    required,
    text_field,
)
from findesk.emulator.content_api import ApiError

SIGNATURE_HEADER = "X-Fin-Agent-API-Webhook-Signature"
RATINGS = ("terrible", "bad", "ok", "good", "amazing")
AUTHORS = ("user", "agent", "fin")
DEDUPE_SECONDS = 300.0
MAX_ITEMS = 10
ACTIVE = ("thinking", "replying", "awaiting_user_reply")
SSE_PATH = "/fin-agent/event-stream"
SSE_TOKEN_SECONDS = 180.0
SSE_REWIND_SECONDS = 120.0
SSE_KEEPALIVE_SECONDS = 15.0
CHUNK_WORDS = 4


def signature(secret: str, raw: bytes) -> str:
    """The header's value: ``sha256=`` and the lowercase hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@dataclass
class FinConversation:
    conversation_id: str
    user: dict[str, Any]
    chat: ChatState
    status: str = "thinking"
    version: str = "2.14"
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Delivery] = field(default_factory=list)
    csat: list[dict[str, Any]] = field(default_factory=list)
    csat_requested: bool = False
    # timestamp of a message taken -> (when, the answer given)
    recent: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    # every event, chunks included, with when it happened (time.monotonic()), for SSE
    stream: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class SseGrant:
    """An ``sse_subscription_url``'s access token: one conversation, events since ``since``."""

    conversation_id: str
    channel: str
    since: float
    expires: float


@dataclass(frozen=True)
class Incoming:
    conversation_id: str
    author: str
    body: str
    timestamp: str
    user: dict[str, Any]
    attachments: list[dict[str, Any]]
    history: list[dict[str, Any]]
    attributes: dict[str, Any]
    errors: dict[str, Any]


def _timestamp(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "parameter_invalid", f"{path} must be an ISO 8601 timestamp", path)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "parameter_invalid", f"{path} must be an ISO 8601 timestamp", path
        ) from None
    return moment.isoformat()


def _message(value: Any, path: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ApiError(400, "parameter_invalid", f"{path} must be an object", path)
    author = text_field(value, "author", f"{path}.author")
    if author not in AUTHORS:
        raise ApiError(
            400, "parameter_invalid", f"{path}.author must be one of {', '.join(AUTHORS)}", path
        )
    body = text_field(value, "body", f"{path}.body")
    timestamp = _timestamp(required(value, "timestamp", f"{path}.timestamp"), f"{path}.timestamp")
    return {"author": author, "body": body, "timestamp": timestamp}


def _attributes(value: Any, path: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The attributes to apply, and per-attribute errors (values that are not scalars)."""
    if value is None:
        return {}, {}
    if not isinstance(value, dict):
        raise ApiError(400, "parameter_invalid", f"{path} must be an object", path)
    at_most(value, MAX_ITEMS, path)
    good: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for name, item in value.items():
        if item is None or isinstance(item, str | int | float | bool):
            good[name] = item
        else:
            bad[name] = f"{item!r:.40} is not a valid value for attribute '{name}'"
    return good, bad


def _attachments(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "parameter_invalid", "attachments must be an array", "attachments")
    at_most(value, MAX_ITEMS, "attachments")
    kept: list[dict[str, Any]] = []
    for number, item in enumerate(value):
        path = f"attachments[{number}]"
        if not isinstance(item, dict):
            raise ApiError(400, "parameter_invalid", f"{path} must be an object", path)
        kind = text_field(item, "type", f"{path}.type")
        if kind == "url":
            url = text_field(item, "url", f"{path}.url")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ApiError(400, "parameter_invalid", f"{path}.url must be an http(s) URL", path)
            kept.append({"type": "url", "url": url})
        elif kind == "file":
            name = text_field(item, "name", f"{path}.name")
            content_type = text_field(item, "content_type", f"{path}.content_type")
            data = text_field(item, "data", f"{path}.data")
            try:
                size = len(base64.b64decode(data, validate=True))
            except (binascii.Error, ValueError):
                raise ApiError(
                    400, "parameter_invalid", f"{path}.data must be base64", path
                ) from None
            kept.append({"type": "file", "name": name, "content_type": content_type, "size": size})
        else:
            raise ApiError(400, "parameter_invalid", f"{path}.type must be url or file", path)
    return kept


def _without_file_data(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the record shows it: a file attachment's base64 ``data`` is left out."""
    attachments = body.get("attachments")
    if not isinstance(attachments, list):
        return body
    shown = [
        {k: v for k, v in a.items() if k != "data"} if isinstance(a, dict) else a
        for a in attachments
    ]
    return {**body, "attachments": shown}


def parse_incoming(body: dict[str, Any], *, with_metadata: bool) -> Incoming:
    conversation_id = text_field(body, "conversation_id")
    message = _message(required(body, "message"), "message")
    if message["author"] != "user":
        raise ApiError(400, "parameter_invalid", "message.author must be user", "message.author")
    user_in = object_field(body, "user")
    user: dict[str, Any] = {
        "id": text_field(user_in, "id", "user.id"),
        "name": optional_text(user_in, "name", "user.name"),
        "email": optional_text(user_in, "email", "user.email"),
    }
    user_attributes, user_errors = _attributes(user_in.get("attributes"), "user.attributes")
    user["attributes"] = user_attributes
    errors: dict[str, Any] = {}
    if user_errors:
        errors["user"] = {"attributes": user_errors}
    history: list[dict[str, Any]] = []
    conversation_attributes: dict[str, Any] = {}
    metadata = body.get("conversation_metadata") if with_metadata else None
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise ApiError(
                400,
                "parameter_invalid",
                "conversation_metadata must be an object",
                "conversation_metadata",
            )
        earlier = metadata.get("history")
        if earlier is not None:
            if not isinstance(earlier, list):
                raise ApiError(
                    400,
                    "parameter_invalid",
                    "conversation_metadata.history must be an array",
                    "conversation_metadata.history",
                )
            at_most(earlier, MAX_ITEMS, "conversation_metadata.history")
            history = [
                _message(m, f"conversation_metadata.history[{n}]") for n, m in enumerate(earlier)
            ]
        conversation_attributes, bad = _attributes(
            metadata.get("attributes"), "conversation_metadata.attributes"
        )
        if bad:
            errors["conversation"] = {"attributes": bad}
    return Incoming(
        conversation_id=conversation_id,
        author=message["author"],
        body=message["body"],
        timestamp=message["timestamp"],
        user=user,
        attachments=_attachments(body.get("attachments")),
        history=history,
        attributes=conversation_attributes,
        errors=errors,
    )


class FinAgentApi:
    """The emulated Fin Agent API's state and behaviour (the router is :func:`fin_agent_router`)."""

    def __init__(
        self,
        brain: FinBrain,
        deliverer: Deliverer,
        secret: str | None,
        *,
        sse_base_url: str | None = None,
        app_id: str = "emulator",
    ) -> None:
        self.brain = brain
        self.deliverer = deliverer
        self.secret = secret
        self.sse_base_url = sse_base_url.rstrip("/") if sse_base_url else None
        self.app_id = app_id
        self._grants: dict[str, SseGrant] = {}
        self._conversations: dict[str, FinConversation] = {}
        self._lock = threading.RLock()
        self._turns = Lanes("fin-agent-turns", self._turn_failed)

    # -- calls --

    def start(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        return self._take(parse_incoming(body, with_metadata=True), version, "start", body)

    def reply(self, body: dict[str, Any], version: str) -> dict[str, Any]:
        return self._take(parse_incoming(body, with_metadata=False), version, "reply", body)

    def csat(self, body: dict[str, Any], _version: str) -> dict[str, Any]:
        conversation_id = text_field(body, "conversation_id")
        rating = text_field(body, "rating")
        if rating not in RATINGS:
            raise ApiError(
                400, "parameter_invalid", f"rating must be one of {', '.join(RATINGS)}", "rating"
            )
        remark = optional_text(body, "remark")
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                raise ApiError(404, "not_found", "Conversation not found", "conversation_id")
            answer = {
                "conversation_id": conversation_id,
                "user_id": conversation.user["id"],
                "status": conversation.status,
                "rating": rating,
                "remark": remark,
                "created_at_ms": iso_ms(),
            }
            conversation.received.append({"endpoint": "csat", "at": iso_ms(), "body": body})
            conversation.csat.append(
                {"rating": rating, "remark": remark, "requested": conversation.csat_requested}
            )
            return answer

    def record(self, conversation_id: str) -> dict[str, Any] | None:
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return None
            return {
                "conversation_id": conversation_id,
                "user": conversation.user,
                "status": conversation.status,
                "attributes": dict(conversation.chat.attributes),
                "transcript": [
                    {"author": self._author(m), "body": m["body"]}
                    for m in conversation.chat.messages
                ],
                "received": list(conversation.received),
                "sent": [d.to_json() for d in conversation.sent],
                "csat_requested": conversation.csat_requested,
                "csat": list(conversation.csat),
            }

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return self._turns.wait_idle(timeout) and self.deliverer.wait_idle(
            max(0.0, deadline - time.monotonic())
        )

    # -- SSE --

    def _grant(self, conversation_id: str, now: float, *, rewind: bool) -> str:
        """A fresh ``sse_subscription_url`` (3-minute token). *Decision:* a stream replays the
        events since the call (since 2 minutes before it with ``rewind=2m``, on ``start``): the
        emulated Fin answers in milliseconds, before any client could connect."""
        token = secrets.token_urlsafe(24)
        channel = f"fin_agent_api:{self.app_id}:{conversation_id}"
        since = now - SSE_REWIND_SECONDS if rewind else now
        for old, grant in list(self._grants.items()):
            if grant.expires < now:
                del self._grants[old]
        self._grants[token] = SseGrant(conversation_id, channel, since, now + SSE_TOKEN_SECONDS)
        url = f"{self.sse_base_url}{SSE_PATH}?channels={quote(channel, safe=':')}"
        return f"{url}&accessToken={token}" + ("&rewind=2m" if rewind else "")

    def sse_grant(self, token: str, channel: str) -> SseGrant | None:
        with self._lock:
            grant = self._grants.get(token)
            if grant is None or grant.expires < time.monotonic():
                return None
            if not hmac.compare_digest(grant.channel.encode(), channel.encode()):
                return None
            return grant

    def sse_events(self, grant: SseGrant, skip: int) -> list[dict[str, Any]]:
        """The grant's conversation's events since its start, after the first ``skip``."""
        with self._lock:
            conversation = self._conversations.get(grant.conversation_id)
            if conversation is None:
                return []
            events = [event for at, event in conversation.stream if at >= grant.since]
            return events[skip:]

    def revoke(self, token: str) -> None:
        """Fin finished its reply cycle (``awaiting_user_reply`` or ``complete``)."""
        with self._lock:
            self._grants.pop(token, None)

    # -- inside --

    def _author(self, message: dict[str, Any]) -> str:
        author = message["author"]
        if author["user_type"] == "end_user":
            return "user"
        return "fin" if author["id"] == self.brain.fin_agent_id else "agent"

    def _take(
        self, incoming: Incoming, version: str, endpoint: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            conversation = self._conversations.get(incoming.conversation_id)
            if conversation is not None:
                for stamp, (when, _answer) in list(conversation.recent.items()):
                    if now - when > DEDUPE_SECONDS:
                        del conversation.recent[stamp]
                seen = conversation.recent.get(incoming.timestamp)
                if seen is not None:
                    conversation.received.append(
                        {
                            "endpoint": endpoint,
                            "at": iso_ms(),
                            "body": _without_file_data(body),
                            "deduplicated": True,
                        }
                    )
                    return seen[1]
            if endpoint == "reply":
                if conversation is None:
                    raise ApiError(404, "not_found", "Conversation not found", "conversation_id")
                if conversation.status == "complete":
                    raise ApiError(
                        422,
                        "conversation_complete",
                        "Fin has completed this conversation; call /fin/start to run Fin again",
                        "conversation_id",
                    )
            if conversation is None:
                conversation = FinConversation(
                    incoming.conversation_id,
                    incoming.user,
                    ChatState(incoming.conversation_id),
                )
                self._conversations[incoming.conversation_id] = conversation
                for earlier in incoming.history:
                    self.brain.add_history(
                        conversation.chat, earlier["author"], earlier["body"], incoming.user["id"]
                    )
            attributes = {**conversation.user.get("attributes", {}), **incoming.user["attributes"]}
            conversation.user = {**incoming.user, "attributes": attributes}
            conversation.chat.attributes = {**conversation.chat.attributes, **incoming.attributes}
            conversation.status = "thinking"
            conversation.version = version
            answer: dict[str, Any] = {
                "conversation_id": incoming.conversation_id,
                "user_id": incoming.user["id"],
                "status": "thinking",
                "created_at_ms": iso_ms(),
            }
            if incoming.errors:
                answer["errors"] = incoming.errors
            if self.sse_base_url is not None:
                answer["sse_subscription_url"] = self._grant(
                    incoming.conversation_id, now, rewind=endpoint == "start"
                )
            conversation.recent[incoming.timestamp] = (now, answer)
            conversation.received.append(
                {"endpoint": endpoint, "at": iso_ms(), "body": _without_file_data(body)}
            )
        restart = endpoint == "start"
        self._turns.submit(
            incoming.conversation_id,
            lambda: self._run_turn(conversation, incoming.body, restart),
        )
        return answer

    def _run_turn(self, conversation: FinConversation, body: str, restart: bool) -> None:
        with self._lock:
            if conversation.status == "complete" and not restart:
                return  # a reply taken while Fin was finishing: the client has control now
            user = dict(conversation.user)
            version = conversation.version
        turn = self.brain.turn(conversation.chat, body, user)
        for name, event in self._events(conversation, turn, version):
            self._send(conversation, name, event)

    def _events(
        self, conversation: FinConversation, turn: FinTurn, version: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """Fin's events for a turn, in order; ``fin_reply_chunk`` ones go over SSE only."""
        base = {"conversation_id": conversation.conversation_id}

        def status(value: str, **extra: Any) -> tuple[str, dict[str, Any]]:
            return (
                "fin_status_updated",
                {
                    "event_name": "fin_status_updated",
                    **base,
                    "user_id": conversation.user["id"],
                    "status": value,
                    **extra,
                    "created_at_ms": iso_ms(),
                },
            )

        events: list[tuple[str, dict[str, Any]]] = []
        if turn.reply_html is not None:
            replied: dict[str, Any] = {
                "event_name": "fin_replied",
                **base,
                "user_id": conversation.user["id"],
                "message": {
                    "id": numeric_id(),
                    "author": "fin",
                    "body": turn.reply_html,
                    "timestamp_ms": iso_ms(),
                },
                "status": "replying" if version == "Preview" else "awaiting_user_reply",
            }
            if turn.kind in ("answered", "fallback"):
                replied["stream_id"] = hex_id(32)
                if self.sse_base_url is not None:
                    events += [
                        ("fin_reply_chunk", {**base, **chunk})
                        for chunk in _chunks(replied["stream_id"], turn.reply_html)
                    ]
            replied["created_at_ms"] = iso_ms()
            events.append(("fin_replied", replied))
        if turn.kind == "handover":
            events += [status("escalated", reason=turn.reason), status("complete")]
            final = "complete"
        elif turn.kind == "resolved":
            csat = {
                "event_name": "csat_requested",
                **base,
                "user_id": conversation.user["id"],
                "options": list(RATINGS),
                "created_at_ms": iso_ms(),
            }
            events += [status("resolved"), ("csat_requested", csat), status("complete")]
            final = "complete"
        else:
            events.append(status("awaiting_user_reply"))
            final = "awaiting_user_reply"
        with self._lock:
            conversation.status = final
            if turn.kind == "resolved":
                conversation.csat_requested = True
        return events

    def _send(self, conversation: FinConversation, name: str, event: dict[str, Any]) -> None:
        with self._lock:
            if self.sse_base_url is not None:
                conversation.stream.append((time.monotonic(), event))
            if name == "fin_reply_chunk":
                return  # SSE only
            delivery = Delivery(name, event)
            conversation.sent.append(delivery)
        self.deliverer.send(conversation.conversation_id, delivery)

    def _turn_failed(self, conversation_id: str, exc: Exception) -> None:
        self.deliverer.log_error(conversation_id, "fin-agent:turn", exc)


def _chunks(stream_id: str, html: str) -> list[dict[str, Any]]:
    """Fin's streamed answer: each chunk the whole plain text so far, a few words more each."""
    words = plain_text(html).split()
    ends = [*range(CHUNK_WORDS, len(words), CHUNK_WORDS), len(words)]
    return [
        {
            "event_name": "fin_reply_chunk",
            "stream_id": stream_id,
            "chunk_index": index,
            "chunk_text": " ".join(words[:end]),
            "status": "replying",
            "created_at_ms": iso_ms(),
        }
        for index, end in enumerate(ends)
    ]


def _done(event: dict[str, Any]) -> bool:
    return event.get("event_name") == "fin_status_updated" and event.get("status") in (
        "awaiting_user_reply",
        "complete",
    )


def webhook_headers(secret: str | None) -> Callable[[bytes], dict[str, str]]:
    def headers(raw: bytes) -> dict[str, str]:
        return {SIGNATURE_HEADER: signature(secret, raw)} if secret else {}

    return headers


def fin_agent_router(
    api: FinAgentApi, gate: IntercomGate, admin_ok: Callable[[Request], bool]
) -> APIRouter:
    router = APIRouter()

    @router.post("/fin/start")
    async def start(request: Request) -> JSONResponse:
        return await gate.handle(request, api.start)

    @router.post("/fin/reply")
    async def reply(request: Request) -> JSONResponse:
        return await gate.handle(request, api.reply)

    @router.post("/fin/csat")
    async def csat(request: Request) -> JSONResponse:
        return await gate.handle(request, api.csat)

    @router.get(SSE_PATH)
    async def event_stream(request: Request) -> Response:
        token = request.query_params.get("accessToken", "")
        channel = request.query_params.get("channels", "")
        grant = api.sse_grant(token, channel)
        if grant is None:
            return JSONResponse(
                {"error": "The access token is invalid, expired or revoked."}, status_code=401
            )

        async def events() -> AsyncIterator[str]:
            sent = 0
            beat = time.monotonic()
            while not await request.is_disconnected():
                for event in api.sse_events(grant, sent):
                    sent += 1
                    yield f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
                    if _done(event):
                        api.revoke(token)
                        return
                now = time.monotonic()
                if now > grant.expires:
                    return
                if now - beat >= SSE_KEEPALIVE_SECONDS:
                    beat = now
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.05)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/emulator/fin-agent/{conversation_id}")
    def record(request: Request, conversation_id: str) -> JSONResponse:
        if not admin_ok(request):
            return JSONResponse({"error": "A valid bearer token is required."}, status_code=401)
        found = api.record(conversation_id)
        if found is None:
            return JSONResponse(
                {"error": "The Fin Agent API has no such conversation."}, status_code=404
            )
        return JSONResponse(found)

    return router
