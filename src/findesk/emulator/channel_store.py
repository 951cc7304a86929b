"""What the emulator's two chat channels share (Intercom's side of findesk's own chat): Fin's turn
on one chat conversation, ordered per-conversation work, and signed deliveries with retries.

* :class:`FinBrain` runs the emulator's answerer (:class:`~findesk.emulator.answerer.
  RetrievalAnswerer`) on a chat conversation kept here (:class:`ChatState`: its transcript in the
  answerer's message shape, the attributes Fin set, tags, title) and says what kind of turn it
  was: an answer (cited from the content library), a "couldn't find" fallback, a handover (with
  Intercom's escalation reason) or a confirmed resolution.
* :class:`Lanes` runs jobs in order per key (a conversation), each key on its own thread while it
  has work, so one conversation's slow delivery never holds up another's.
* :class:`Deliverer` POSTs a JSON payload to one URL taken from the emulator's configuration
  (never from a request: no server-side request forgery), with the headers its ``sign`` gives
  for the exact bytes sent, and retries with exponential back-off on a network error or a
  non-2xx answer, in order per conversation (a later event waits for the earlier one). Each
  :class:`Delivery` records its attempts, for the ``/emulator/…`` inspection pages.

The state lives in memory: a restart of the emulator forgets chat conversations (the Messenger's
transcripts are the ones kept on disk).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import Request
from starlette.responses import JSONResponse

from findesk.emulator.answerer import RetrievalAnswerer
from findesk.emulator.content_api import (
    DEFAULT_VERSION,
    SUPPORTED_VERSIONS,
    ApiError,
    RateLimiter,
    error_body,
)
from findesk.emulator.sync import ErrorLog
from findesk.kit.errors import Problem
from findesk.kit.http import load_json

#: Intercom's escalation reasons (Fin Agent API guide) for the answerer's handover reasons.
ESCALATION_REASONS = {
    "human_requested": "Escalation requested by user",
    "no_match": "Conversation finished without resolution",
    "unanswered_turns": "Conversation finished without resolution",
}
DEFAULT_ESCALATION_REASON = "Escalation rule matched"

TurnKind = Literal["answered", "fallback", "handover", "resolved", "silent"]


def iso_ms(moment: datetime | None = None) -> str:
    """``2025-01-24T10:00:00.123Z``: Intercom's ``*_at_ms`` strings."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def numeric_id(digits: int = 15) -> str:
    """An id in the style of Intercom's conversation and message ids (digits, random)."""
    return str(10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1)))


def hex_id(length: int = 24) -> str:
    """An id in the style of Intercom's contact ids."""
    return secrets.token_hex(length // 2)


_TAG_RE = re.compile(r"<[^>]*>")


def plain_text(html: str) -> str:
    return " ".join(_TAG_RE.sub(" ", html).split())


# --- Fin's turn ---------------------------------------------------------------------------------


@dataclass
class ChatState:
    """One chat conversation as Fin knows it, in the shapes the answerer reads."""

    conversation_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    title: str | None = None

    def add(self, author_id: str, user_type: str, html: str) -> None:
        """Appends a message (replacing the list: see :meth:`FinBrain.turn`)."""
        self.messages = [
            *self.messages,
            {
                "id": f"m{len(self.messages) + 1}",
                "author": {"id": author_id, "user_type": user_type},
                "body": html,
                "visibility": "public",
            },
        ]


@dataclass(frozen=True)
class FinTurn:
    kind: TurnKind
    reply_html: str | None
    reason: str | None = None  # Intercom's escalation reason, on a handover
    source_url: str | None = None  # the page an answer cites


class FinBrain:
    """Fin answering on a chat channel, through the emulator's answerer."""

    HUMAN_AGENT_ID = "chat-human-agent"

    def __init__(self, answerer: RetrievalAnswerer, fin_agent_id: str) -> None:
        self.answerer = answerer
        self.fin_agent_id = fin_agent_id
        self._lock = threading.Lock()

    def add_history(self, state: ChatState, author: str, html: str, user_id: str) -> None:
        """An earlier message the client sent as context (``user``, ``agent`` or ``fin``)."""
        if author == "fin":
            state.add(self.fin_agent_id, "agent", html)
        elif author == "agent":
            state.add(self.HUMAN_AGENT_ID, "agent", html)
        else:
            state.add(user_id, "end_user", html)

    def turn(self, state: ChatState, html: str, user: dict[str, Any]) -> FinTurn:
        """The end user wrote ``html``: Fin's turn. Updates ``state`` (transcript, attributes),
        replacing its lists and dicts rather than changing them, so readers need no lock."""
        user_id = str(user.get("id") or "user")
        work = ChatState(state.conversation_id, list(state.messages), dict(state.attributes))
        work.add(user_id, "end_user", html)
        conversation = {
            "id": state.conversation_id,
            "title": state.title,
            "tags": list(state.tags),
            "attributes": dict(state.attributes),
        }
        with self._lock:  # one turn at a time: the answerer's library cache is shared
            decision = self.answerer.answer(conversation, list(work.messages), user)
        for name, value in decision.attributes.items():
            if value is None:
                work.attributes.pop(name, None)
            else:
                work.attributes[name] = value
        if decision.reply_html:
            work.add(self.fin_agent_id, "agent", decision.reply_html)
        state.title = decision.title or state.title
        if decision.tags:
            state.tags = list(decision.tags)
        state.attributes = work.attributes
        state.messages = work.messages
        if decision.reply_html is None:
            return FinTurn("silent", None)
        if decision.hand_over:
            why = str(decision.attributes.get("fin_handover_reason") or "")
            reason = ESCALATION_REASONS.get(why, DEFAULT_ESCALATION_REASON)
            return FinTurn("handover", decision.reply_html, reason=reason)
        if decision.status == "resolved":
            return FinTurn("resolved", decision.reply_html)
        if decision.attributes.get("fin_resolution") == "unanswered":
            return FinTurn("fallback", decision.reply_html)
        source = decision.attributes.get("fin_source_url")
        return FinTurn(
            "answered", decision.reply_html, source_url=source if isinstance(source, str) else None
        )


# --- ordered work -------------------------------------------------------------------------------


class Lanes:
    """Jobs run in order per key; each key with work has one (daemon) thread draining it.
    A job that raises is reported to ``on_error`` and the lane goes on."""

    def __init__(self, name: str, on_error: Callable[[str, Exception], None] | None = None) -> None:
        self.name = name
        self._on_error = on_error
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._cond = threading.Condition()
        self._running = 0

    def submit(self, key: str, job: Callable[[], None]) -> None:
        with self._cond:
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(job)
                return
            self._queues[key] = deque([job])
            self._running += 1
        threading.Thread(
            target=self._drain, args=(key,), name=f"{self.name}:{key}", daemon=True
        ).start()

    def _drain(self, key: str) -> None:
        while True:
            with self._cond:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    self._running -= 1
                    self._cond.notify_all()
                    return
                job = queue[0]
            try:
                job()
            except Exception as exc:  # one failing job must not stop the lane
                if self._on_error is not None:
                    self._on_error(key, exc)
            with self._cond:
                self._queues[key].popleft()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._running == 0, timeout)


# --- deliveries ---------------------------------------------------------------------------------

DeliveryStatus = Literal["pending", "delivered", "failed", "not_configured"]


@dataclass
class Attempt:
    at: str
    status: int | None  # what the receiver answered; None: no answer (network error, timeout)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "error": self.error}


@dataclass
class Delivery:
    """One event sent (or to be sent) to the client's URL, and how that went."""

    name: str  # the event's name or type
    payload: dict[str, Any]
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.name,
            "payload": self.payload,
            "delivery": {
                "status": self.status,
                "attempts": [a.to_json() for a in self.attempts],
            },
        }


class Deliverer:
    """Sends payloads to ``url`` in order per conversation, retrying with back-off.

    ``headers(raw_body)`` gives the headers for the exact bytes sent (a signature, a token).
    Attempt ``n`` that fails waits ``min(retry_delay * 2 ** (n - 1), max_delay)`` before the next;
    after ``retries`` retries the delivery is ``failed`` (logged) and the next one goes.
    """

    def __init__(
        self,
        name: str,
        url: str | None,
        headers: Callable[[bytes], dict[str, str]],
        *,
        retries: int,
        retry_delay: float,
        max_delay: float,
        closing: threading.Event,
        errors: ErrorLog,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._headers = headers
        self.retries = retries
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self._closing = closing
        self._errors = errors
        self._lanes = Lanes(
            name,
            lambda key, exc: errors.add(key, name, None, f"{type(exc).__name__}: {exc}"),
        )
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._lock = threading.Lock()

    def send(self, conversation_id: str, delivery: Delivery) -> None:
        if self.url is None:
            delivery.status = "not_configured"
            return
        self._lanes.submit(conversation_id, lambda: self._deliver(conversation_id, delivery))

    def wait_idle(self, timeout: float) -> bool:
        return self._lanes.wait_idle(timeout)

    def log_error(self, conversation_id: str, operation: str, exc: Exception) -> None:
        self._errors.add(conversation_id, operation, None, f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._http.close()

    def _deliver(self, conversation_id: str, delivery: Delivery) -> None:
        assert self.url is not None
        raw = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Intercom-Webhooks (findesk emulator)",
            **self._headers(raw),
        }
        number = 0
        while True:
            number += 1
            attempt = Attempt(iso_ms(), None)
            try:
                answer = self._http.post(self.url, content=raw, headers=headers)
                attempt.status = answer.status_code
                if answer.is_success:
                    with self._lock:
                        delivery.attempts.append(attempt)
                        delivery.status = "delivered"
                    return
                attempt.error = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                attempt.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            with self._lock:
                delivery.attempts.append(attempt)
            give_up = number > self.retries or self._closing.is_set()
            delay = min(self.retry_delay * 2 ** (number - 1), self.max_delay)
            then = "gave up" if give_up else f"retrying in {delay:g} s"
            self._errors.add(
                conversation_id,
                f"{self.name}:{delivery.name}",
                attempt.status,
                f"{attempt.error} (attempt {number}; {then})",
            )
            if give_up or self._closing.wait(delay):
                with self._lock:
                    delivery.status = "failed"
                return


# --- the API side: Intercom's auth, version, rate limit and error shapes ----------------------


def _version_at_least(version: str, minimum: tuple[int, int]) -> bool:
    if version in ("Preview", "Unstable"):
        return True
    major, _, minor = version.partition(".")
    return (int(major), int(minor)) >= minimum


class IntercomGate:
    """Checks a call as Intercom's REST API does, then answers it.

    The bearer token first (a missing or wrong one, or none configured: 401 ``unauthorized``,
    compared in constant time), then the per-token rate limit (429), then ``Intercom-Version``
    (optional, default 2.14; unknown or below ``min_version``: 400
    ``intercom_version_invalid``), then the body (a JSON object, else 400 ``bad_request``).
    Errors are ``error.list`` with the response's ``X-Request-Id`` as ``request_id``.
    """

    def __init__(
        self, token: str | None, limiter: RateLimiter, min_version: tuple[int, int] | None = None
    ) -> None:
        self._token = token.encode() if token else None
        self._limiter = limiter
        self._min_version = min_version

    def _authorised(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if self._token is None or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), self._token)

    async def handle(
        self, request: Request, answer: Callable[[dict[str, Any], str], dict[str, Any]]
    ) -> JSONResponse:
        request_id = uuid.uuid4().hex
        headers = {"X-Request-Id": request_id}
        try:
            if not self._authorised(request):
                raise ApiError(401, "unauthorized", "Access Token Invalid")
            allowed, remaining, reset = self._limiter.hit("token")
            headers.update(
                {
                    "X-RateLimit-Limit": str(self._limiter.limit),
                    "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(reset),
                }
            )
            if not allowed:
                raise ApiError(429, "rate_limit_exceeded", "Rate limit exceeded")
            version = request.headers.get("intercom-version", DEFAULT_VERSION).strip()
            if version not in SUPPORTED_VERSIONS or (
                self._min_version is not None and not _version_at_least(version, self._min_version)
            ):
                raise ApiError(
                    400,
                    "intercom_version_invalid",
                    f"Requested version {version!r} is not supported here",
                )
            raw = await request.body()
            try:
                body = load_json(raw) if raw else None
            except Problem:
                body = None
            if not isinstance(body, dict):
                raise ApiError(400, "bad_request", "The request body must be a JSON object")
            return JSONResponse(answer(body, version), headers=headers)
        except ApiError as exc:
            return JSONResponse(
                error_body(request_id, exc.code, exc.message, exc.field),
                status_code=exc.status,
                headers=headers,
            )


# --- validation helpers (400 for a missing or malformed field, as Intercom answers) -----------


def required(body: dict[str, Any], name: str, path: str | None = None) -> Any:
    value = body.get(name)
    if value is None:
        where = path or name
        raise ApiError(400, "parameter_not_found", f"{where} is required", where)
    return value


def text_field(body: dict[str, Any], name: str, path: str | None = None) -> str:
    value = required(body, name, path)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # ids sent as numbers
    if not isinstance(value, str) or not value.strip():
        where = path or name
        raise ApiError(400, "parameter_invalid", f"{where} must be a non-empty string", where)
    return value


def optional_text(body: dict[str, Any], name: str, path: str | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        where = path or name
        raise ApiError(400, "parameter_invalid", f"{where} must be a string", where)
    return value


def object_field(body: dict[str, Any], name: str, path: str | None = None) -> dict[str, Any]:
    value = required(body, name, path)
    if not isinstance(value, dict):
        where = path or name
        raise ApiError(400, "parameter_invalid", f"{where} must be an object", where)
    return value


def at_most(items: list[Any] | dict[str, Any], limit: int, path: str) -> None:
    """Intercom's documented limits (10 attachments, history messages, attributes): 422."""
    if len(items) > limit:
        raise ApiError(422, "parameter_invalid", f"{path} allows at most {limit} items", path)


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
