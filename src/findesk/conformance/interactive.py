"""The optional interactive part of the conformance suite: the helpdesk's webhook (spec 6).

The suite listens where the helpdesk is told Fin's webhook is, starts a conversation as Fin does,
hands it over to a human and asks the operator (through ``prompt``) to reply to it in their
helpdesk. Then it checks the notification that reaches it, and that Fin, pulling as it would,
sees the reply. Each check gives a :class:`~findesk.conformance.runner.Result` like the others.
"""

from __future__ import annotations

import hmac
import json
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
class WebhookCall:
    """One request that reached the listener, as it came."""

    seq: int
    at: float  # time.monotonic() when it was read
    method: str
    target: str  # path and query
    headers: tuple[tuple[str, str], ...]
    body: bytes

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

    def exchange(self, base_url: str) -> Exchange:
        body = snippet(self.body) if self.body else None
        return Exchange(self.method, f"{base_url}{self.target}", body, 202, "")


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
        self.server.listener._record(self.command, self.path, list(self.headers.items()), body)
        ours = self.command == "POST" and self.path.startswith(HOOK_PREFIX)
        self.send_response(202 if ours else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

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
    to a POST under the webhook path (as Intercom does) and 404 to anything else."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8099) -> None:
        self.host = host
        self.port = port
        self._calls: list[WebhookCall] = []
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

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
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        with self._cond:
            call = WebhookCall(
                len(self._calls), time.monotonic(), method, target, tuple(headers), body
            )
            self._calls.append(call)
            self._cond.notify_all()

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


@dataclass(frozen=True)
class Instruction:
    """What the operator is asked to do."""

    conversation_id: str
    user_name: str
    first_message: str
    wait_seconds: float
    webhook_url: str

    @property
    def text(self) -> str:
        return "\n".join(
            (
                "",
                ">>> Your turn: in your helpdesk, open the conversation",
                f"      conversation id: {self.conversation_id}",
                f"      end user:        {self.user_name}",
                f"      first message:   {self.first_message}",
                "    and reply to it in your helpdesk as a human agent (a public reply, not",
                "    a private note). Typing for a moment first lets the suite check typing too.",
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
    # How long to watch for an echo of the suite's own changes before asking the operator.
    echo_window: float = 2.0


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
        if listener.wait_for(is_sync, time.monotonic() + options.echo_window) is not None:
            state.early_snapshot = _own_changes(ctx, cid, state)
        state.asked_at = time.monotonic()
        state.early = [c for c in listener.calls if is_sync(c) and c.at < state.asked_at]
        state.deadline = state.asked_at + options.wait
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
        raise Skipped(
            f"warning: {seen}, and the conversation showed no change of the helpdesk's own: "
            "the helpdesk seems to echo Fin's own changes back to Fin. Harmless (Fin debounces) "
            "but each costs Fin a sync run; findesk does not echo (spec 6, a decision, not a "
            "documented requirement, and a late echo cannot be told from a real notification)"
        )

    return checks


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
