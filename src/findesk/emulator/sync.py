"""The part of the Fin emulator that calls a helpdesk exactly as Fin does (spec sections 5 to 7).

``HelpdeskConnection`` holds the credentials of one helpdesk's Fin API: it fetches an access token
with the client-credentials grant, keeps it until shortly before it expires, and on any 401 or 403
fetches a new one and retries that call once. ``SyncEngine`` runs sync runs against it: the
webhook's ``notify`` (debounced, one run at a time per conversation, failed runs retried), a direct
``sync``, and the Messenger's ``start_conversation`` and ``user_says``. What Fin says comes from an
``Answerer``; failures land in an ``ErrorLog`` like the one on Fin's settings page.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from findesk.fin_api.client import FinApiClient, Reply, Variant

#: How the token request's body is encoded (Intercom's token settings default to JSON).
GrantFormat = Literal["json", "form"]


# --- what the answerer decides ----------------------------------------------------------------


@dataclass
class Decision:
    """Fin's turn: a reply (or none), whether to hand over, and what to set on the conversation.

    ``tags`` and ``attributes`` are sent only when non-empty (tags replace the whole set);
    ``status`` (e.g. ``"resolved"``) only when given.
    """

    reply_html: str | None = None
    hand_over: bool = False
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str | None = None


class Answerer(Protocol):
    def answer(
        self, conversation: dict[str, Any], messages: list[dict[str, Any]], user: dict[str, Any]
    ) -> Decision:
        """``messages`` are the ones Fin has not seen before, oldest first."""
        ...


# --- errors -------------------------------------------------------------------------------------


class OperationError(Exception):
    """A call that failed: no answer (``status`` None: network error, timeout) or a non-2xx."""

    def __init__(self, operation: str, status: int | None, message: str) -> None:
        super().__init__(f"{operation}: {status if status is not None else 'no answer'}: {message}")
        self.operation = operation
        self.status = status
        self.message = message

    @property
    def retryable(self) -> bool:
        """Fin retries a run that failed for a reason that may go away; a 4xx will not."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)


class TokenError(OperationError):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__("get_token", status, message)


@dataclass(frozen=True)
class ErrorEntry:
    time: datetime
    conversation_id: str | None
    operation: str
    status: int | None
    message: str


class ErrorLog:
    """The most recent failures, newest first, as Fin's settings page lists them."""

    def __init__(self, limit: int = 200) -> None:
        self._entries: deque[ErrorEntry] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(
        self, conversation_id: str | None, operation: str, status: int | None, message: str
    ) -> None:
        entry = ErrorEntry(datetime.now(UTC), conversation_id, operation, status, message)
        with self._lock:
            self._entries.appendleft(entry)

    def entries(self) -> list[ErrorEntry]:
        with self._lock:
            return list(self._entries)


# --- the connection to one helpdesk -----------------------------------------------------------


class _RenewingBearer(httpx.Auth):
    """Sets the bearer token; on a 401 or 403 fetches a new token and sends the call once more."""

    def __init__(self, connection: HelpdeskConnection) -> None:
        self.connection = connection

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.connection.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code in (401, 403):
            token = self.connection.access_token(rejected=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


class HelpdeskConnection:
    """A helpdesk's Fin API as configured in Fin's deployment settings.

    ``transport`` is for tests (e.g. to put failures in front of a real server).
    """

    #: Renew this long before the token expires (or at 90% of a shorter lifetime).
    renew_margin = 30.0

    def __init__(
        self,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        grant_format: GrantFormat = "json",
        variant: Variant = "rest",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.grant_format = grant_format
        self.token_fetches = 0
        self._token: str | None = None
        self._renew_at = 0.0
        self._token_lock = threading.Lock()
        self._token_http = httpx.Client(timeout=timeout, transport=transport)
        self.http = httpx.Client(
            base_url=base_url,
            auth=_RenewingBearer(self),
            timeout=timeout,
            transport=transport,
        )
        self.api = FinApiClient(self.http, variant)

    @property
    def current_token(self) -> str | None:
        return self._token

    def access_token(self, rejected: str | None = None) -> str:
        """The cached token, or a new one if there is none, it is about to expire, or it is the
        one the helpdesk just ``rejected`` (another thread may already have replaced it)."""
        with self._token_lock:
            if self._token is None or self._token == rejected or _now() >= self._renew_at:
                self._token, lifetime = self._fetch_token()
                self._renew_at = _now() + lifetime - min(self.renew_margin, lifetime * 0.1)
            return self._token

    def _fetch_token(self) -> tuple[str, float]:
        fields = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        self.token_fetches += 1
        try:
            if self.grant_format == "json":
                response = self._token_http.post(self.token_url, json=fields)
            else:
                response = self._token_http.post(self.token_url, data=fields)
        except httpx.TransportError as exc:
            raise TokenError(None, _describe(exc)) from exc
        if not response.is_success:
            raise TokenError(response.status_code, response.text[:300])
        try:
            body = response.json()
            return str(body["access_token"]), float(body.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError(response.status_code, "no access_token in the answer") from exc

    def close(self) -> None:
        self.http.close()
        self._token_http.close()


# --- sync runs --------------------------------------------------------------------------------


@dataclass
class RunResult:
    """The outcome of a run (after its retries). ``error`` is set when Fin gave up."""

    conversation_id: str | None
    attempts: int = 1
    new_messages: list[dict[str, Any]] = field(default_factory=list)
    decision: Decision | None = None
    reply: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Seen:
    """What Fin knows of one conversation's messages."""

    last_id: str | None = None
    ids: set[str] = field(default_factory=set)
    user_id: str | None = None


FETCHED_KEPT = 1000  # conversations whose latest fetch the engine keeps for inspection


@dataclass(frozen=True)
class Fetched:
    """A conversation as a sync run fetched it (``get_conversation``), and how many sync runs
    have fetched it."""

    conversation: dict[str, Any]
    fetched_at: str
    runs: int


#: Who answers a conversation, as the Messenger shows it.
Owner = Literal["fin", "waiting", "human"]


class Memory(Protocol):
    """Where Fin keeps what it has seen of each conversation (``after_id``, known messages)."""

    def seen(self, conversation_id: str) -> Seen: ...

    def remember(
        self,
        conversation_id: str,
        user_id: str,
        messages: list[dict[str, Any]],
        reply: dict[str, Any] | None,
        owner: Owner | None,
        status: str | None = None,
    ) -> None: ...


class InMemory:
    """A ``Memory`` that lasts as long as the process."""

    def __init__(self) -> None:
        self._seen: dict[str, Seen] = {}
        self._lock = threading.Lock()

    def seen(self, conversation_id: str) -> Seen:
        with self._lock:
            return self._seen.setdefault(conversation_id, Seen())

    def remember(
        self,
        conversation_id: str,
        user_id: str,
        messages: list[dict[str, Any]],
        reply: dict[str, Any] | None,
        owner: Owner | None,
        status: str | None = None,
    ) -> None:
        absorb(self.seen(conversation_id), user_id, messages, reply)


def absorb(
    seen: Seen, user_id: str, messages: list[dict[str, Any]], reply: dict[str, Any] | None
) -> None:
    """Update ``seen`` with a run's fetched messages and Fin's reply."""
    seen.user_id = user_id
    seen.ids.update(str(m["id"]) for m in messages)
    if messages:
        # The last one fetched, not Fin's reply: a message written between the fetch and the
        # reply would sit before the reply and be skipped by after_id=<reply>.
        seen.last_id = str(messages[-1]["id"])
    if reply is not None:
        seen.ids.add(str(reply["id"]))


class SyncEngine:
    """Runs sync runs against one helpdesk, as Fin does (spec 7).

    A failed run (network error, timeout, 5xx, 429) is retried ``retries`` times, ``retry_delay``
    seconds apart; creates carry object ids fixed for the whole run, so a retry that repeats a
    create gets the first object back. Notifications for a conversation within ``debounce``
    seconds of the first one make one run. What Fin has seen is kept in ``memory`` (the
    process's by default; the emulator's transcript store keeps it on disk).
    """

    def __init__(
        self,
        connection: HelpdeskConnection,
        answerer: Answerer,
        fin_agent_id: str,
        *,
        retries: int = 5,
        retry_delay: float = 60.0,
        debounce: float = 1.0,
        errors: ErrorLog | None = None,
        memory: Memory | None = None,
    ) -> None:
        self.connection = connection
        self.answerer = answerer
        self.fin_agent_id = fin_agent_id
        self.retries = retries
        self.retry_delay = retry_delay
        self.debounce = debounce
        self.errors = errors or ErrorLog()
        self.memory: Memory = memory or InMemory()
        self._locks: dict[str, threading.Lock] = {}
        self._state_lock = threading.Lock()
        self._scheduled: dict[str, threading.Timer] = {}
        self._running = 0
        self._idle = threading.Condition()
        self._closing = threading.Event()
        # What each sync run fetched of its conversation (the newest FETCHED_KEPT of them), so
        # that what Fin saw, the attributes the helpdesk wrote included, can be inspected.
        self._fetched: OrderedDict[str, Fetched] = OrderedDict()

    # --- entry points ---

    def notify(self, conversation_id: str) -> None:
        """The webhook: a run ``debounce`` seconds from now, unless one is already due."""
        with self._idle:
            if conversation_id in self._scheduled or self._closing.is_set():
                return
            timer = threading.Timer(self.debounce, self._run_scheduled, (conversation_id,))
            timer.daemon = True
            self._scheduled[conversation_id] = timer
            timer.start()

    def sync(self, conversation_id: str) -> RunResult:
        """One sync run (spec 7.3), with its retries; waits for a run in progress to end."""
        reply_object_id = _object_id("fin-reply")
        with self._conversation_lock(conversation_id):
            return self._with_retries(
                conversation_id, lambda: self._sync_once(conversation_id, reply_object_id)
            )

    def start_conversation(self, user: dict[str, Any], first_message_html: str) -> RunResult:
        """The Messenger starts a conversation (spec 7.1).

        ``user`` is ``{"user_id"}`` for a verified user the helpdesk knows, or
        ``{"object_id", "name"?, "email"?, "attributes"?}`` for one to create.
        """
        conversation_object_id = _object_id("fin-conv")
        message_object_id = _object_id("fin-msg")
        reply_object_id = _object_id("fin-reply")
        api = self.connection.api

        def attempt() -> RunResult:
            if "user_id" in user:
                end_user = self._call("get_user", lambda: api.get_user(user["user_id"]))
            else:
                fields = {k: v for k, v in user.items() if v is not None}
                end_user = self._call("create_user", lambda: api.create_user(**fields))
            created = self._call(
                "create_conversation",
                lambda: api.create_conversation(
                    user_id=end_user["id"],
                    object_id=conversation_object_id,
                    initial_message=self._message(
                        message_object_id, first_message_html, end_user["id"], "end_user"
                    ),
                ),
            )
            conversation, first = created["conversation"], created["initial_message"]
            with self._conversation_lock(conversation["id"]):
                # Fin opened this conversation: the first message is its to answer.
                result = self._take_turn(conversation, end_user, [first], reply_object_id, True)
                self._remember(conversation, end_user["id"], [first], result)
            return result

        return self._with_retries(None, attempt)

    def user_says(self, conversation_id: str, html: str) -> RunResult:
        """The end user writes in the Messenger (spec 7.2): their message, then Fin's turn."""
        message_object_id = _object_id("fin-msg")
        reply_object_id = _object_id("fin-reply")
        api = self.connection.api

        def attempt() -> RunResult:
            user_id = self.memory.seen(conversation_id).user_id
            if user_id is None:
                conversation = self._call(
                    "get_conversation",
                    lambda: api.get_conversation(conversation_id),
                )
                user_id = str(conversation["user"]["id"])
            message = self._message(message_object_id, html, user_id, "end_user")
            self._call(
                "create_message",
                lambda: api.create_message(conversation_id=conversation_id, **message),
            )
            return self._sync_once(conversation_id, reply_object_id)

        with self._conversation_lock(conversation_id):
            return self._with_retries(conversation_id, attempt)

    def last_fetched(self, conversation_id: str) -> Fetched | None:
        """The conversation as the latest sync run fetched it, or None if none has."""
        with self._state_lock:
            return self._fetched.get(conversation_id)

    def last_seen_id(self, conversation_id: str) -> str | None:
        return self.memory.seen(conversation_id).last_id

    def wait_idle(self, timeout: float) -> bool:
        """True once no notified run is due or running (for tests and shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._scheduled and not self._running, timeout)

    def close(self) -> None:
        self._closing.set()
        with self._idle:
            for timer in self._scheduled.values():
                timer.cancel()
            self._scheduled.clear()
        self.connection.close()

    # --- a run ---

    def _sync_once(self, conversation_id: str, reply_object_id: str) -> RunResult:
        api = self.connection.api
        conversation = self._call("get_conversation", lambda: api.get_conversation(conversation_id))
        self._record_fetched(conversation_id, conversation)
        user_id = str(conversation["user"]["id"])
        user = self._call("get_user", lambda: api.get_user(user_id))
        seen = self.memory.seen(conversation_id)
        messages: list[dict[str, Any]] = self._call(
            "get_messages",
            lambda: api.get_messages(conversation_id, after_id=seen.last_id),
        )
        # after_id is only an optimisation (spec 4.5): a helpdesk may send everything again.
        new = [m for m in messages if m["id"] not in seen.ids]
        result = self._take_turn(
            conversation, user, new, reply_object_id, self._fins_turn(conversation, new)
        )
        # Only a run that got this far has seen the messages: a failed one sees them again.
        self._remember(conversation, user_id, messages, result)
        return result

    def _fins_turn(self, conversation: dict[str, Any], new: list[dict[str, Any]]) -> bool:
        assignee = conversation.get("assignee") or {}
        return (
            assignee.get("id") == self.fin_agent_id
            and conversation.get("status") == "open"
            and any((m.get("author") or {}).get("user_type") == "end_user" for m in new)
        )

    def _take_turn(
        self,
        conversation: dict[str, Any],
        user: dict[str, Any],
        new: list[dict[str, Any]],
        reply_object_id: str,
        fins_turn: bool,
    ) -> RunResult:
        conversation_id = str(conversation["id"])
        if not fins_turn:
            return RunResult(conversation_id, new_messages=new)
        decision = self.answerer.answer(conversation, new, user)
        api = self.connection.api
        reply = None
        if decision.reply_html:
            message = self._message(
                reply_object_id, decision.reply_html, self.fin_agent_id, "agent"
            )
            reply = self._call(
                "create_message",
                lambda: api.create_message(conversation_id=conversation_id, **message),
            )
        changes: dict[str, Any] = {"assignee_id": None if decision.hand_over else self.fin_agent_id}
        if decision.title is not None:
            changes["title"] = decision.title
        if decision.tags:
            changes["tags"] = list(decision.tags)
        if decision.attributes:
            changes["attributes"] = dict(decision.attributes)
        if decision.status is not None:
            changes["status"] = decision.status
        self._call(
            "update_conversation",
            lambda: api.update_conversation(conversation_id, **changes),
        )
        return RunResult(conversation_id, new_messages=new, decision=decision, reply=reply)

    # --- plumbing ---

    def _with_retries(
        self, conversation_id: str | None, attempt: Callable[[], RunResult]
    ) -> RunResult:
        number = 1
        while True:
            try:
                result = attempt()
            except OperationError as exc:
                give_up = not exc.retryable or number > self.retries or self._closing.is_set()
                then = "gave up" if give_up else f"retrying in {self.retry_delay:g} s"
                self.errors.add(
                    conversation_id,
                    exc.operation,
                    exc.status,
                    f"{exc.message} (attempt {number}; {then})",
                )
                if give_up or self._closing.wait(self.retry_delay):
                    return RunResult(conversation_id, attempts=number, error=str(exc))
                number += 1
                continue
            result.attempts = number
            return result

    def _call(self, operation: str, call: Callable[[], Reply]) -> Any:
        try:
            reply = call()
        except httpx.TransportError as exc:  # network error or timeout
            raise OperationError(operation, None, _describe(exc)) from exc
        if not reply.ok:
            raise OperationError(operation, reply.status, _problem_text(reply.error))
        return reply.data

    @staticmethod
    def _message(object_id: str, html: str, author_id: str, user_type: str) -> dict[str, Any]:
        return {
            "message_type": "comment",
            "body": html,
            "author": {"id": author_id, "user_type": user_type},
            "visibility": "public",
            "created_at": _iso_now(),
            "object_id": object_id,
            "attachments": [],
        }

    def _remember(
        self,
        conversation: dict[str, Any],
        user_id: str,
        messages: list[dict[str, Any]],
        result: RunResult,
    ) -> None:
        if result.decision is not None:
            owner: Owner = "waiting" if result.decision.hand_over else "fin"
        else:
            assignee = (conversation.get("assignee") or {}).get("id")
            owner = (
                "waiting"
                if assignee is None
                else "fin"
                if assignee == self.fin_agent_id
                else "human"
            )
        # The status as this run leaves it: Fin's own change, else what the helpdesk said.
        status = (result.decision.status if result.decision is not None else None) or (
            conversation.get("status")
        )
        self.memory.remember(
            str(conversation["id"]),
            user_id,
            messages,
            result.reply,
            owner,
            status=str(status) if status is not None else None,
        )

    def _record_fetched(self, conversation_id: str, conversation: dict[str, Any]) -> None:
        with self._state_lock:
            before = self._fetched.pop(conversation_id, None)
            self._fetched[conversation_id] = Fetched(
                conversation=dict(conversation),
                fetched_at=_iso_now(),
                runs=(before.runs if before else 0) + 1,
            )
            while len(self._fetched) > FETCHED_KEPT:
                self._fetched.popitem(last=False)

    @contextmanager
    def _conversation_lock(self, conversation_id: str) -> Iterator[None]:
        with self._state_lock:
            lock = self._locks.setdefault(conversation_id, threading.Lock())
        with lock:
            yield

    def _run_scheduled(self, conversation_id: str) -> None:
        with self._idle:
            # From now on a new notification schedules another run, after this one.
            self._scheduled.pop(conversation_id, None)
            self._running += 1
        try:
            self.sync(conversation_id)
        except Exception as exc:  # the answerer is other code; log its failure, keep running
            self.errors.add(conversation_id, "answer", None, f"{type(exc).__name__}: {exc}")
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()


def _object_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _now() -> float:
    return time.monotonic()


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _problem_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("detail") or error.get("title") or error)[:300]
    return str(error)[:300]
