"""The optional interactive part of the conformance suite: the helpdesk's webhook (spec 6).

The suite listens where the helpdesk is told Fin's webhook is, starts a conversation as Fin does,
hands it over to a human and asks the operator (through ``prompt``) to reply to it in their
helpdesk. Then it checks the notification that reaches it, and that Fin, pulling as it would,
sees the reply. Each check gives a :class:`~findesk.conformance.runner.Result` like the others.
"""

from __future__ import annotations

import hmac
import itertools
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from findesk.conformance.checks import (
    Check,
    CheckFn,
    Config,
    Context,
    Exchange,
    Failed,
    Level,
    Skipped,
    _is_id,
    expect,
    expect_shape,
    expect_status,
    initial_message,
    snippet,
    unique,
)
from findesk.conformance.runner import Result, run_checks

HOOK_PREFIX = "/hooks/standalone/custom_helpdesk_conversation_event/"
MAX_BODY = 1024 * 1024
TYPING = "agent_typing"


# --- the listener -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How the listener answers one call: ``status`` after ``delay`` seconds. With ``hold``,
    the listener holds the request for ``delay`` seconds to make the helpdesk time out (and
    answers ``status`` only if it waited that long)."""

    status: int = 202
    delay: float = 0.0
    hold: bool = False
    retry_after: int | None = None

    @property
    def label(self) -> str:
        if self.hold:
            return f"held {self.delay:g} s"
        text = f"{self.status}"
        if self.retry_after is not None:
            text += f" with Retry-After: {self.retry_after}"
        return f"{text} after {self.delay:g} s" if self.delay else text


ACCEPTED = Answer()


@dataclass
class WebhookCall:
    """One request that reached the listener, as it came, and how the listener answered."""

    seq: int
    at: float  # time.monotonic() when it was read
    method: str
    target: str  # path and query
    headers: tuple[tuple[str, str], ...]
    body: bytes
    answer: Answer = ACCEPTED
    planned: bool = False  # answered from a plan (see WebhookListener.plan)
    ended_at: float | None = None  # when the answer was sent or the helpdesk gave up
    gave_up: bool = False  # the helpdesk closed the connection before the answer

    @property
    def status(self) -> int:
        return self.answer.status

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def payload(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_typing(self) -> bool:
        payload = self.payload
        return isinstance(payload, dict) and payload.get("event_type") == TYPING

    def mentions(self, conversation_id: str) -> bool:
        """Whether the call is about this conversation (by its body, or failing that its text)."""
        payload = self.payload
        if isinstance(payload, dict) and "conversation_id" in payload:
            return str(payload["conversation_id"]) == conversation_id
        return conversation_id in self.target or conversation_id.encode() in self.body

    @property
    def outcome(self) -> str:
        """What the helpdesk got, in words."""
        if self.gave_up:
            return f"{self.answer.label}: the helpdesk gave up after {self.seconds:.1f} s"
        return self.answer.label

    @property
    def seconds(self) -> float:
        return (self.ended_at or self.at) - self.at

    def exchange(self, base_url: str) -> Exchange:
        body = snippet(self.body) if self.body else None
        answered = "(the helpdesk gave up waiting)" if self.gave_up else self.answer.label
        return Exchange(self.method, f"{base_url}{self.target}", body, self.status, answered)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    listener: WebhookListener


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _handle(self) -> None:
        body = self._read_body()
        ours = self.command == "POST" and self.path.startswith(HOOK_PREFIX)
        listener = self.server.listener
        call = listener._record(self.command, self.path, list(self.headers.items()), body, ours)
        answer = call.answer if ours else Answer(404)
        if answer.delay > 0 and listener._wait_or_gone(self.connection, answer.delay):
            listener._ended(call, gave_up=True)
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            if answer.retry_after is not None:
                self.send_header("Retry-After", str(answer.retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the helpdesk went away meanwhile
            listener._ended(call, gave_up=True)
            self.close_connection = True
            return
        listener._ended(call, gave_up=False)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while sum(map(len, chunks)) <= MAX_BODY:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the checks report what arrived."""


class WebhookListener:
    """Where the helpdesk is told Fin's webhook is: records every request, answers 202 at once
    to a POST under the webhook path (as Intercom does) and 404 to anything else, unless a plan
    for the conversation says otherwise (:meth:`plan`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8099) -> None:
        self.host = host
        self.port = port
        self._calls: list[WebhookCall] = []
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._plans: dict[str, list[Answer]] = {}
        self._stopping = threading.Event()

    def plan(self, conversation_id: str, answers: list[Answer]) -> None:
        """Answer the next sync calls for this conversation (POSTs under the webhook path that
        are not typing) in this order, one answer each; 202 at once again after the last."""
        with self._cond:
            self._plans[conversation_id] = list(answers)

    def start(self) -> WebhookListener:
        """Bind (an ``OSError`` when the address is taken) and serve in a thread."""
        server_class = _Server6 if ":" in self.host else _Server
        server = server_class((self.host, self.port), _Handler)
        server.listener = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends the requests it holds
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, integration_id: str) -> str:
        """The URL the helpdesk must call for this integration id."""
        return f"{self.base_url}{HOOK_PREFIX}{integration_id}"

    def _record(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        ours: bool = True,
    ) -> WebhookCall:
        with self._cond:
            call = WebhookCall(
                len(self._calls), time.monotonic(), method, target, tuple(headers), body
            )
            if ours and not call.is_typing:
                for conversation_id, answers in self._plans.items():
                    if answers and call.mentions(conversation_id):
                        call.answer, call.planned = answers.pop(0), True
                        break
            if not ours:
                call.answer = Answer(404)
            self._calls.append(call)
            self._cond.notify_all()
            return call

    def _ended(self, call: WebhookCall, gave_up: bool) -> None:
        with self._cond:
            call.ended_at, call.gave_up = time.monotonic(), gave_up
            self._cond.notify_all()

    def _wait_or_gone(self, connection: socket.socket, seconds: float) -> bool:
        """Wait ``seconds`` (less when the listener stops); whether the helpdesk closed the
        connection meanwhile (it gave up waiting for the answer)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            readable, _, _ = select.select([connection], [], [], min(remaining, 0.1))
            if not readable:
                continue
            try:
                if connection.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
            self._stopping.wait(remaining)  # it sent more: just wait the time out
        return False

    def wait_until(self, predicate: Callable[[list[WebhookCall]], bool], deadline: float) -> bool:
        """Wait until ``predicate(calls)`` holds or ``deadline`` (monotonic) passes; whether
        it holds."""
        with self._cond:
            while True:
                if predicate(list(self._calls)):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    @property
    def calls(self) -> list[WebhookCall]:
        with self._cond:
            return list(self._calls)

    def wait_for(
        self, predicate: Callable[[WebhookCall], bool], deadline: float, after: int = -1
    ) -> WebhookCall | None:
        """The first call (with ``seq`` above ``after``) that matches, waiting until
        ``deadline`` (a ``time.monotonic()`` value) at the latest; None when none came."""
        with self._cond:
            while True:
                found = next(
                    (c for c in self._calls if c.seq > after and predicate(c)),
                    None,
                )
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._cond.wait(remaining)


# --- the operator's part -------------------------------------------------------------------------


ACTIONS = ("reply", "replies", "take_over")
REPLIES = 3  # how many quick replies the coalescing step asks for


@dataclass(frozen=True)
class Instruction:
    """What the operator (or the trigger command) is asked to do: ``action`` is ``reply``
    (one public reply), ``replies`` (several quick public replies) or ``take_over``."""

    conversation_id: str
    user_name: str
    first_message: str
    wait_seconds: float
    webhook_url: str
    action: str = "reply"

    @property
    def text(self) -> str:
        what = {
            "reply": (
                "    and reply to it in your helpdesk as a human agent (a public reply, not",
                "    a private note). Typing for a moment first lets the suite check typing too.",
            ),
            "replies": (
                f"    and reply to it {REPLIES} times in quick succession (public replies, as",
                "    fast as you can): the suite counts the webhook calls they cause.",
            ),
            "take_over": ("    and take it over: assign it to yourself as a human agent.",),
        }[self.action]
        return "\n".join(
            (
                "",
                ">>> Your turn: in your helpdesk, open the conversation",
                f"      conversation id: {self.conversation_id}",
                f"      end user:        {self.user_name}",
                f"      first message:   {self.first_message}",
                *what,
                f"    Waiting up to {self.wait_seconds:g} s for the helpdesk's webhook call to",
                f"    {self.webhook_url}",
                "",
            )
        )


Prompt = Callable[[Instruction], None]


@dataclass(frozen=True)
class InteractiveOptions:
    webhook_key: str
    integration_id: str = "conformance"
    wait: float = 300.0
    # The grace window: a sync call this soon after the suite's own change, with no change of
    # the helpdesk's own, is an echo; also how long the calls must pause to count as settled.
    echo_window: float = 2.0
    # How the listener answers the helpdesk's first calls after the reply (``faults``): 500,
    # 429 with Retry-After, a hold past the helpdesk's timeout, a slow 202, then 202.
    faults: bool = True
    retry_after: int = 2
    hold: float = 30.0
    slow: float = 3.0

    def fault_plan(self) -> list[Answer]:
        if not self.faults:
            return []
        return [
            Answer(500),
            Answer(429, retry_after=self.retry_after),
            Answer(202, delay=self.hold, hold=True),
            Answer(202, delay=self.slow),
            Answer(202),
        ]


@dataclass
class _State:
    """What the interactive checks share, in the order they learn it."""

    conversation: dict[str, Any] | None = None
    user_name: str = ""
    first_message: str = ""
    seen_ids: set[str] = field(default_factory=set)
    last_seen_id: str | None = None
    created_at: float = 0.0  # monotonic, when the suite's first change was made
    asked_at: float = 0.0  # monotonic, when the operator was asked
    deadline: float = 0.0
    early: list[WebhookCall] = field(default_factory=list)  # sync calls before the prompt
    early_snapshot: str = ""  # the helpdesk's own changes seen at the prompt
    notified: WebhookCall | None = None
    reply: dict[str, Any] | None = None
    attempts: list[WebhookCall] | None = None  # the reply's delivery, up to the accepted call

    @property
    def cid(self) -> str:
        if self.conversation is None:
            raise Skipped(
                "skipped because interactive.handover failed: the suite's conversation could "
                "not be made"
            )
        return str(self.conversation["id"])


def _agent_ids(ctx: Context) -> set[str]:
    reply = ctx.api.get_agents()
    expect_status(reply, 200, what="Get agents")
    expect(isinstance(reply.data, list), "Get agents did not answer an array", reply)
    return {str(a.get("id")) for a in reply.data if isinstance(a, dict)}


def _messages(ctx: Context, cid: str, after_id: str | None = None) -> list[dict[str, Any]]:
    reply = ctx.api.get_messages(cid, after_id=after_id)
    expect_status(reply, 200, what="Get messages")
    expect(isinstance(reply.data, list), "Get messages did not answer an array", reply)
    for index, message in enumerate(reply.data):
        expect_shape(message, "message", reply, f"messages[{index}]")
    return list(reply.data)


def _describe(messages: list[dict[str, Any]]) -> str:
    if not messages:
        return "no new message"
    return ", ".join(
        f"{m.get('visibility')} message by {m['author'].get('user_type')} {m['author'].get('id')}"
        for m in messages
    )


def interactive_checks(
    listener: WebhookListener, options: InteractiveOptions, prompt: Prompt
) -> list[Check]:
    """The interactive checks; run them with :func:`run_interactive` (they run in order and
    share what they learn)."""
    state = _State()
    hook_url = listener.url(options.integration_id)
    checks: list[Check] = []

    def check(
        name: str, description: str, level: Level = "required"
    ) -> Callable[[CheckFn], CheckFn]:
        def register(fn: CheckFn) -> CheckFn:
            checks.append(Check(name, description, fn, level=level))
            return fn

        return register

    def for_conversation() -> list[WebhookCall]:
        """Every call about the suite's conversation (Skipped when it could not be made)."""
        cid = state.cid
        return [c for c in listener.calls if c.mentions(cid)]

    def made_calls() -> list[WebhookCall]:
        calls = for_conversation()
        if not calls:
            raise Skipped(
                "skipped because webhook.notified failed: no webhook call for the conversation "
                "to check"
            )
        return calls

    def expect_call(condition: bool, reason: str, call: WebhookCall) -> None:
        if not condition:
            raise Failed(reason, call.exchange(listener.base_url))

    def is_sync(call: WebhookCall) -> bool:
        return call.mentions(state.cid) and not call.is_typing

    @check("interactive.handover", "the suite's conversation was started and handed over")
    def handover(ctx: Context) -> None:
        tag = uuid.uuid4().hex[:6]
        state.user_name = f"Conformance Customer {tag}"
        state.first_message = f"Conformance check {tag}: please reply to me as a human agent."
        state.created_at = time.monotonic()
        user = ctx.new_user(name=state.user_name)
        uid = str(user["id"])
        created = ctx.api.create_conversation(
            user_id=uid,
            object_id=unique("c"),
            title=f"Conformance check {tag}",
            initial_message=initial_message(uid, f"<p>{state.first_message}</p>"),
        )
        expect_status(created, 200, 201, what="Create conversation")
        data = created.data
        expect(
            isinstance(data, dict) and isinstance(data.get("conversation"), dict),
            "Create conversation did not answer {conversation, initial_message}",
            created,
        )
        conversation = data["conversation"]
        expect(_is_id(conversation.get("id")), "the new conversation has no id", created)
        cid = str(conversation["id"])
        # From here on the webhook checks have their conversation, whatever fails below.
        state.conversation = conversation
        first = data.get("initial_message")
        if isinstance(first, dict) and _is_id(first.get("id")):
            state.seen_ids = {str(first["id"])}
            state.last_seen_id = str(first["id"])
        expect_shape(conversation, "conversation", created)
        try:
            fin = ctx.fin_agent_id
        except Skipped:
            fin = None
        if fin is not None:  # Fin answers, then lets go, as in a real handover
            said = ctx.post_message(
                conversation,
                "<p>Let me get you a human colleague.</p>",
                author={"id": fin, "user_type": "agent"},
            )
            expect_status(said, 200, 201, what="Create message (Fin's answer)")
        handed = ctx.api.update_conversation(cid, assignee_id=None)
        expect_status(handed, 200, what="Update conversation with assignee_id null")
        expect(
            isinstance(handed.data, dict) and handed.data.get("assignee") is None,
            "the conversation still has an assignee after assignee_id null",
            handed,
        )
        seen = _messages(ctx, cid)
        expect(bool(seen), "Get messages does not show the first message")
        state.seen_ids = {str(m["id"]) for m in seen}
        state.last_seen_id = str(seen[-1]["id"])

    @check("webhook.notified", "a webhook call for the conversation came once asked")
    def notified(ctx: Context) -> None:
        cid = state.cid
        # Anything before the prompt comes from the suite's own changes (or the helpdesk's
        # automation): watch for it for a moment, and note what the helpdesk changed itself.
        early = listener.wait_for(is_sync, time.monotonic() + options.echo_window)
        if early is not None:
            # Let the echoes end (they pause for the grace window), boundedly, before asking.
            until = time.monotonic() + max(10 * options.echo_window, 10.0)
            while early is not None:
                last = early.seq
                pause = min(until, time.monotonic() + options.echo_window)
                early = listener.wait_for(is_sync, pause, after=last)
            state.early_snapshot = _own_changes(ctx, cid, state)
        state.asked_at = time.monotonic()
        state.early = [c for c in listener.calls if is_sync(c) and c.at < state.asked_at]
        state.deadline = state.asked_at + options.wait
        listener.plan(cid, options.fault_plan())
        prompt(Instruction(cid, state.user_name, state.first_message, options.wait, hook_url))
        after = max((c.seq for c in state.early), default=-1)
        call = listener.wait_for(is_sync, state.deadline, after=after)
        if call is None:
            others = [c for c in listener.calls if c.at >= state.asked_at and not is_sync(c)]
            seen = "; ".join(f"{c.method} {c.target} {snippet(c.body, 120)}" for c in others[:5])
            raise Failed(
                f"no webhook call for conversation {cid} within {options.wait:g} s of asking "
                "for a reply"
                + (f" ({len(others)} other call(s): {seen})" if others else " (no call at all)")
            )
        state.notified = call

    @check("reply.visible", "Get messages after the last seen id shows the agent's public reply")
    def reply_visible(ctx: Context) -> None:
        cid = state.cid
        call = state.notified
        if call is None:
            raise Skipped("skipped because webhook.notified failed")
        agents = _agent_ids(ctx)
        new: list[dict[str, Any]] = []
        calls = 0
        while call is not None:  # pull on each notification, as Fin does, until the reply shows
            calls += 1
            listed = _messages(ctx, cid, after_id=state.last_seen_id)
            new = [m for m in listed if str(m["id"]) not in state.seen_ids]
            replies = [
                m
                for m in new
                if m.get("visibility", "public") == "public"
                and m["author"].get("user_type") == "agent"
            ]
            if replies:
                author = str(replies[-1]["author"]["id"])
                expect(
                    author in agents,
                    f"the reply's author {author!r} is not among the agents Get agents lists",
                )
                state.reply = replies[-1]
                return
            call = listener.wait_for(is_sync, state.deadline, after=call.seq)
        raise Failed(
            f"{calls} webhook call(s) for the conversation came, but Get messages after "
            f"{state.last_seen_id!r} shows no public reply by an agent ({_describe(new)}) "
            f"within {options.wait:g} s"
        )

    @check(
        "reply.owner",
        "Get conversation shows the agent the helpdesk assigned it to",
        level="recommended",
    )
    def reply_owner(ctx: Context) -> None:
        cid = state.cid
        if state.reply is None:
            raise Skipped("skipped because reply.visible failed")
        reply = ctx.api.get_conversation(cid)
        expect_status(reply, 200, what="Get conversation")
        expect_shape(reply.data, "conversation", reply)
        assignee = reply.data.get("assignee")
        if assignee is None:
            raise Skipped("the helpdesk did not reassign the conversation (assignee is null)")
        agents = _agent_ids(ctx)
        expect(
            str(assignee["id"]) in agents,
            f"the assignee {assignee['id']!r} is not among the agents Get agents lists",
            reply,
        )

    def attempts() -> list[WebhookCall]:
        """The helpdesk's attempts at delivering the reply's notification (from the first call
        after the prompt), up to the first one the listener accepted; waits for that one until
        the deadline."""
        if state.notified is None:
            raise Skipped("skipped because webhook.notified failed")
        if state.attempts is None:
            first = state.notified.seq

            def delivery(calls: list[WebhookCall]) -> list[WebhookCall]:
                made = [c for c in calls if c.seq >= first and is_sync(c)]
                end = next((i for i, c in enumerate(made) if _accepted(c)), None)
                return made if end is None else made[: end + 1]

            listener.wait_until(lambda calls: _accepted_last(delivery(calls)), state.deadline)
            state.attempts = delivery(listener.calls)
        return state.attempts

    def answered(wanted: Callable[[WebhookCall], bool], what: str) -> tuple[WebhookCall, int]:
        """The attempt the listener answered as ``what``, and its index among the attempts."""
        made = attempts()
        for index, call in enumerate(made):
            if call.planned and wanted(call):
                return call, index
        if not options.faults:
            raise Skipped("the listener was told to accept every call (no faults)")
        raise Skipped(
            f"skipped because no attempt was answered {what}: the helpdesk stopped after "
            f"{len(made)} attempt(s) ({_outcomes(made)})"
        )

    def retry_of(made: list[WebhookCall], index: int) -> WebhookCall | None:
        return made[index + 1] if index + 1 < len(made) else None

    @check(
        "webhook.retry_5xx",
        "a webhook call answered 500 is retried (delivery is at-least-once)",
    )
    def retry_5xx(ctx: Context) -> None:
        call, index = answered(lambda c: c.status >= 500 and not c.gave_up, "500")
        if retry_of(attempts(), index) is None:
            raise Failed(
                f"the call answered {call.status} was not retried within {options.wait:g} s of "
                "asking for a reply: a lost notification leaves the end user waiting",
                call.exchange(listener.base_url),
            )

    @check(
        "webhook.retry_timeout",
        "a webhook call that timed out is retried (delivery is at-least-once)",
    )
    def retry_timeout(ctx: Context) -> None:
        call, index = answered(lambda c: c.answer.hold, "by holding it")
        if not call.gave_up:
            raise Skipped(
                f"the helpdesk waited the whole {call.seconds:.1f} s the listener held its call "
                "(then it was answered 202): hold longer than the helpdesk's timeout "
                "(--webhook-hold) to check this"
            )
        if retry_of(attempts(), index) is None:
            raise Failed(
                f"the helpdesk gave up on its call after {call.seconds:.1f} s (a timeout) and "
                f"did not retry it within {options.wait:g} s of asking for a reply",
                call.exchange(listener.base_url),
            )

    @check(
        "webhook.retry_after",
        "after a 429 with Retry-After, the next attempt comes no sooner than it says",
        level="recommended",
    )
    def retry_after(ctx: Context) -> None:
        call, index = answered(lambda c: c.status == 429, "429")
        wanted = float(call.answer.retry_after or 0)
        again = retry_of(attempts(), index)
        if again is None:
            raise Failed(
                f"the call answered 429 (Retry-After: {wanted:g}) was not retried",
                call.exchange(listener.base_url),
            )
        waited = again.at - (call.ended_at or call.at)
        if waited < wanted - RETRY_AFTER_SLACK:
            raise Failed(
                f"the next attempt came {waited:.2f} s after a 429 with Retry-After: "
                f"{wanted:g}: too soon",
                again.exchange(listener.base_url),
            )

    @check(
        "webhook.backoff",
        "the pause between attempts grows (back-off) rather than hammering",
        level="recommended",
    )
    def backoff(ctx: Context) -> None:
        made = attempts()
        gaps = delivery_gaps(made)
        if len(gaps) < 2:
            raise Skipped(
                "skipped because there is no pause after a timeout to compare with the one "
                f"after the 500 (see webhook.retry_timeout; the attempts: {_outcomes(made)})"
            )
        if gaps[-1] <= gaps[0]:
            shown = ", ".join(f"{gap:.2f} s" for gap in gaps)
            raise Failed(
                f"the pauses before the retries of a 500 and then of a timeout were {shown}: "
                "they should grow (exponential back-off), so that a struggling Fin is not "
                "hammered",
                made[-1].exchange(listener.base_url),
            )

    @check(
        "webhook.delivery_id",
        "retries of one notification carry the same delivery id (when the helpdesk sends one)",
        level="recommended",
    )
    def delivery_id(ctx: Context) -> None:
        made = attempts()
        if len(made) < 2:
            raise Skipped("skipped because the helpdesk made a single attempt")
        names = [n for n in DELIVERY_HEADERS if made[0].header(n)]
        if not names:
            raise Skipped(
                "the helpdesk sends no delivery id (optional; findesk sends X-Findesk-Delivery; "
                f"looked for {', '.join(DELIVERY_HEADERS)})"
            )
        for name in names:
            first = made[0].header(name)
            for call in made[1:]:
                expect_call(
                    call.header(name) == first,
                    f"{name} changed between attempts of one notification: "
                    f"{first} then {call.header(name)}",
                    call,
                )

    @check("webhook.post_json", "every call is a POST with Content-Type: application/json")
    def post_json(ctx: Context) -> None:
        for call in made_calls():
            expect_call(call.method == "POST", f"the call is a {call.method}, not a POST", call)
            types = call.header("content-type")
            media = types[0].split(";", 1)[0].strip().lower() if types else ""
            expect_call(
                media == "application/json",
                f"Content-Type must be application/json, got {types[0] if types else None!r}",
                call,
            )

    @check("webhook.key", "every call carries X-Webhook-Key, equal to the configured key")
    def webhook_key(ctx: Context) -> None:
        wanted = options.webhook_key.encode()
        for call in made_calls():
            keys = call.header("x-webhook-key")
            expect_call(bool(keys), "the call has no X-Webhook-Key header", call)
            expect_call(len(keys) == 1, f"the call has {len(keys)} X-Webhook-Key headers", call)
            expect_call(
                hmac.compare_digest(keys[0].encode(), wanted),
                f"X-Webhook-Key differs from the configured key (got {len(keys[0])} "
                f"characters, expected {len(wanted)})",
                call,
            )

    @check("webhook.integration_id", "every call goes to the webhook path of the integration id")
    def integration_id(ctx: Context) -> None:
        wanted = f"{HOOK_PREFIX}{options.integration_id}"
        for call in made_calls():
            expect_call(call.path == wanted, f"called {call.path}, expected {wanted}", call)

    @check("webhook.sync_body", 'a sync call\'s body is exactly {"conversation_id": "<id>"}')
    def sync_body(ctx: Context) -> None:
        conversation_id = state.conversation["id"] if state.conversation else None
        calls = [c for c in made_calls() if not c.is_typing]
        if not calls:
            raise Skipped("no sync call for the conversation to check")
        for call in calls:
            payload = call.payload
            expect_call(
                payload in ({"conversation_id": conversation_id}, {"conversation_id": state.cid}),
                f'the body must be exactly {{"conversation_id": {state.cid!r}}}, '
                f"got {snippet(call.body, 200)}",
                call,
            )

    @check("webhook.typing", "agent_typing calls have the documented shape")
    def typing(ctx: Context) -> None:
        calls = [c for c in for_conversation() if c.is_typing]
        if not calls:
            raise Skipped(
                "no agent_typing call arrived for the conversation (typing is optional, best "
                "effort); type for a moment before replying to check it"
            )
        agents = _agent_ids(ctx)
        for call in calls:
            problems = typing_problems(call.payload, state.cid, agents)
            expect_call(not problems, "; ".join(problems), call)

    @check(
        "webhook.no_echo",
        "no sync call for Fin's own changes before the operator was asked",
        level="recommended",
    )
    def no_echo(ctx: Context) -> None:
        if not state.asked_at:
            raise Skipped("the operator was not asked")
        if not state.early:
            return
        first = state.early[0].at - state.created_at
        seen = f"{len(state.early)} sync call(s) for the conversation arrived before the operator"
        seen += f" was asked (the first {first:.1f} s after the suite's first change)"
        if state.early_snapshot:
            raise Skipped(
                f"warning: {seen}, but the helpdesk had changed the conversation itself "
                f"({state.early_snapshot}), which Fin should hear about: not counted as an echo"
            )
        raise Failed(
            f"{seen}, within the {options.echo_window:g} s grace window, and the conversation "
            "showed no change of the helpdesk's own: the helpdesk echoes Fin's own changes back "
            "to Fin (each costs Fin a sync run; findesk does not echo: spec 6, a decision)",
            state.early[0].exchange(listener.base_url),
        )

    @check(
        "webhook.coalesced",
        f"{REPLIES} quick replies cause fewer webhook calls than replies (coalescing)",
        level="recommended",
    )
    def coalesced(ctx: Context) -> None:
        cid = state.cid
        if state.notified is None:
            raise Skipped("skipped because webhook.notified failed")
        if not _accepted_last(attempts()):  # the reply's delivery is over, or never was
            raise Skipped(
                "skipped because the reply's notification was never accepted (see "
                "webhook.retry_5xx and webhook.retry_timeout)"
            )
        seen = {str(m["id"]) for m in _messages(ctx, cid)}
        after = max((c.seq for c in listener.calls), default=-1)
        deadline = time.monotonic() + options.wait
        # The first call is answered slowly, so that the other changes come while it is open.
        listener.plan(cid, [Answer(202, delay=options.slow)] if options.faults else [])
        prompt(
            Instruction(
                cid, state.user_name, state.first_message, options.wait, hook_url, "replies"
            )
        )
        replies: list[dict[str, Any]] = []
        last = after
        # Pull on each call, as Fin does, until the replies show or the calls pause.
        pause = max(2 * options.echo_window, options.slow + options.echo_window)
        while len(replies) < REPLIES:
            until = deadline if last == after else min(deadline, time.monotonic() + pause)
            call = listener.wait_for(is_sync, until, after=last)
            if call is None:
                break
            last = call.seq
            replies = [
                m
                for m in _messages(ctx, cid)
                if str(m["id"]) not in seen
                and m.get("visibility", "public") == "public"
                and m["author"].get("user_type") == "agent"
            ]
        settle(after, deadline)
        calls = [c for c in listener.calls if c.seq > after and is_sync(c)]
        if not calls:
            raise Failed(f"no webhook call came for {REPLIES} replies within {options.wait:g} s")
        if len(replies) < 2:
            raise Skipped(
                f"only {len(replies)} new public reply(ies) showed: coalescing needs several "
                "quick changes"
            )
        if len(calls) >= len(replies):
            raise Failed(
                f"{len(replies)} quick replies caused {len(calls)} webhook calls "
                f"({_outcomes(calls)}): a helpdesk that coalesces sends fewer (one call may "
                "cover every change made while the previous call was open or backing off)",
                calls[-1].exchange(listener.base_url),
            )

    def settle(after: int, deadline: float) -> None:
        """Wait until no call is open and none came for the grace window (or the deadline)."""
        while time.monotonic() < deadline:
            listener.wait_until(
                lambda calls: all(c.ended_at is not None for c in calls if c.seq > after),
                deadline,
            )
            last = max((c.seq for c in listener.calls), default=-1)
            quiet = min(deadline, time.monotonic() + options.echo_window)
            if listener.wait_for(is_sync, quiet, after=last) is None:
                return

    @check(
        "ownership.race",
        "Fin's stale update naming the Fin agent does not take the conversation back from the "
        "human who took it over; the update's other fields apply (the contract is silent: "
        "findesk's choice)",
        level="recommended",
    )
    def ownership_race(ctx: Context) -> None:
        cid = state.cid
        fin = ctx.fin_agent_id
        owner = _human_owner(ctx, cid, fin)
        if owner is None:
            prompt(
                Instruction(
                    cid, state.user_name, state.first_message, options.wait, hook_url, "take_over"
                )
            )
            deadline = time.monotonic() + options.wait
            owner = _human_owner(ctx, cid, fin)
            while owner is None and time.monotonic() < deadline:  # look again each second
                last = max((c.seq for c in listener.calls), default=-1)
                listener.wait_for(is_sync, min(deadline, time.monotonic() + 1.0), after=last)
                owner = _human_owner(ctx, cid, fin)
        if owner is None:
            raise Skipped(
                "the conversation shows no human owner after the reply or a take-over "
                "(its assignee is null or the Fin agent), so there is no race to check"
            )
        title = f"Conformance race {uuid.uuid4().hex[:6]}"
        stale = ctx.api.update_conversation(cid, assignee_id=fin, title=title)
        expect_status(stale, 200, what="Update conversation naming the Fin agent")
        assignee = stale.data.get("assignee") if isinstance(stale.data, dict) else None
        expect(
            isinstance(assignee, dict) and str(assignee.get("id")) == owner,
            f"the answer shows the conversation assigned to {_who(assignee, fin)}, not to the "
            f"human {owner!r} who took it over: a stale sync run took it back from them "
            "(the contract is silent; findesk keeps the human)",
            stale,
        )
        reread = ctx.api.get_conversation(cid)
        expect_status(reread, 200, what="Get conversation")
        data = reread.data if isinstance(reread.data, dict) else {}
        assignee = data.get("assignee")
        expect(
            isinstance(assignee, dict) and str(assignee.get("id")) == owner,
            f"a re-read shows the conversation assigned to {_who(assignee, fin)}, not to the "
            f"human {owner!r} who took it over (the contract is silent; findesk keeps the "
            "human)",
            reread,
        )
        expect(
            data.get("title") == title,
            f"the update's other fields did not apply: the title is {data.get('title')!r}, "
            f"expected {title!r}",
            reread,
        )

    return checks


DELIVERY_HEADERS = (
    "X-Findesk-Delivery",
    "Webhook-Id",
    "Idempotency-Key",
    "X-Delivery-Id",
    "X-Webhook-Id",
)
RETRY_AFTER_SLACK = 0.1  # seconds: clocks and scheduling


def _accepted(call: WebhookCall) -> bool:
    return call.ended_at is not None and not call.gave_up and 200 <= call.status < 300


def _accepted_last(made: list[WebhookCall]) -> bool:
    return bool(made) and _accepted(made[-1])


def _outcomes(calls: list[WebhookCall]) -> str:
    return "; ".join(call.outcome for call in calls) or "none"


def delivery_gaps(made: list[WebhookCall]) -> list[float]:
    """The pauses (seconds) before each retry of a failed attempt that was not answered with a
    Retry-After (those follow it instead), from the end of the attempt to the next one."""
    gaps = []
    for call, again in itertools.pairwise(made):
        if call.answer.retry_after is None and not _accepted(call):
            gaps.append(again.at - (call.ended_at or call.at))
    return gaps


def _human_owner(ctx: Context, cid: str, fin: str) -> str | None:
    """The id of the conversation's assignee when it is someone other than Fin."""
    seen = ctx.api.get_conversation(cid)
    assignee = seen.data.get("assignee") if isinstance(seen.data, dict) else None
    if isinstance(assignee, dict) and assignee.get("id") is not None:
        if str(assignee["id"]) != fin:
            return str(assignee["id"])
    return None


def _who(assignee: Any, fin: str) -> str:
    if not isinstance(assignee, dict):
        return "nobody"
    if str(assignee.get("id")) == fin:
        return f"the Fin agent {fin!r}"
    return repr(assignee.get("id"))


def typing_problems(payload: Any, conversation_id: str, agents: set[str]) -> list[str]:
    """What is wrong with an ``agent_typing`` body (an empty list when nothing is)."""
    if not isinstance(payload, dict):
        return ["the body is not a JSON object"]
    problems = []
    extra = set(payload) - {"conversation_id", "event_type", "data"}
    if extra:
        problems.append(f"unexpected fields {sorted(extra)}")
    if str(payload.get("conversation_id")) != conversation_id:
        problems.append(f"conversation_id must be {conversation_id!r}")
    data = payload.get("data")
    agent = data.get("agent") if isinstance(data, dict) else None
    if not isinstance(agent, dict):
        return [*problems, "data.agent must be an object"]
    if agent.get("user_type") != "agent":
        problems.append(f"data.agent.user_type must be 'agent', got {agent.get('user_type')!r}")
    for name in ("id", "name", "email"):
        value = agent.get(name)
        if not (isinstance(value, str) and value) and not (name == "id" and isinstance(value, int)):
            problems.append(f"data.agent.{name} is required, got {value!r}")
    if "id" in agent and str(agent["id"]) not in agents:
        problems.append(f"data.agent.id {agent['id']!r} is not among the agents Get agents lists")
    return problems


def _own_changes(ctx: Context, cid: str, state: _State) -> str:
    """The changes the helpdesk made itself since the handover (empty when none shows)."""
    changes = []
    seen = ctx.api.get_conversation(cid)
    if isinstance(seen.data, dict) and seen.data.get("assignee") is not None:
        changes.append(f"assigned to {seen.data['assignee'].get('id')!r}")
    listed = ctx.api.get_messages(cid, after_id=state.last_seen_id)
    if isinstance(listed.data, list):
        new = [
            m for m in listed.data if isinstance(m, dict) and str(m.get("id")) not in state.seen_ids
        ]
        if new:
            changes.append(f"{len(new)} new message(s)")
    return ", ".join(changes)


def run_interactive(
    config: Config, listener: WebhookListener, options: InteractiveOptions, prompt: Prompt
) -> Iterator[Result]:
    """Each interactive check's result as soon as it is known (``listener`` must be running)."""
    if not listener.running:
        raise RuntimeError("start the webhook listener first")
    yield from run_checks(config, interactive_checks(listener, options, prompt))
