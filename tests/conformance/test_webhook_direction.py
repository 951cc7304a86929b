"""The webhook direction of ``findesk conformance``, automated: the suite's listener answers the
helpdesk's calls with 500, 429 + Retry-After, a timeout and a slow 202, a trigger command plays
the human (replying through findesk's agent API with a token), and each broken helpdesk fails as
what it is. findesk runs with a fast notifier (short timeout and back-off) to keep runs short."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import support.server
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from support.asgi import read_body, replayed
from support.server import LiveServer, database_url, free_port

from findesk.conformance.checks import Config, Failed
from findesk.conformance.interactive import (
    HOOK_PREFIX,
    Answer,
    Instruction,
    InteractiveOptions,
    WebhookListener,
    run_interactive,
)
from findesk.conformance.runner import Result
from findesk.conformance.trigger import command_prompt
from findesk.conversations.models import Message as StoredMessage

KEY = "hooks-webhook-key"
INTEGRATION = "hooks"
FAST_NOTIFIER = {
    "notifier_poll_seconds": 0.1,
    "notifier_timeout_seconds": 1.5,
    # The pause after the 500 is at most 1x base, the one after the timeout at least 2x base:
    # a loaded machine would have to delay a retry by a whole second to hide the growth.
    "notifier_backoff_base_seconds": 1.0,
}
WEBHOOK_CHECKS = {
    "webhook.notified",
    "reply.visible",
    "reply.owner",
    "webhook.retry_5xx",
    "webhook.retry_timeout",
    "webhook.retry_after",
    "webhook.backoff",
    "webhook.delivery_id",
    "webhook.post_json",
    "webhook.key",
    "webhook.integration_id",
    "webhook.sync_body",
    "webhook.typing",
    "webhook.no_echo",
    "webhook.coalesced",
    "ownership.race",
}
SCRIPT = textwrap.dedent(
    """\
    import os, sys
    import httpx

    base, token, cid = sys.argv[1:4]
    action = os.environ["FINDESK_CONFORMANCE_ACTION"]
    assert os.environ["FINDESK_CONFORMANCE_CONVERSATION_ID"] == cid
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30) as http:
        def call(path, status, **body):
            answer = http.post(f"/conversations/{cid}/{path}", **body)
            if answer.status_code != status:
                sys.exit(f"{action}: {path} answered {answer.status_code} {answer.text}")
        if action == "reply":
            call("typing", 202)
            call("messages", 201, json={"body": "<p>Hello from the script.</p>"})
        elif action == "replies":
            for n in range(3):
                call("messages", 201, json={"body": f"<p>Quick reply {n}.</p>"})
        elif action == "take_over":
            call("take-over", 200)
        else:
            sys.exit(f"unknown action {action}")
    print(action, "done")
    """
)


@pytest.fixture(scope="module")
def listener() -> Iterator[WebhookListener]:
    with WebhookListener("127.0.0.1", 0) as started:
        yield started


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Echoer:
    """findesk, plus a stand-in for a helpdesk that echoes: after each of Fin's writes it posts
    a sync call for the conversation to Fin's webhook."""

    def __init__(self, app: ASGIApp, url: str) -> None:
        self.app, self.url = app, url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _fin_write(scope):
            await self.app(scope, receive, send)
            return
        sent: list[bytes] = []
        answered: list[bytes] = []
        status: list[int] = []

        async def reading() -> Message:
            message = await receive()
            sent.append(message.get("body", b""))
            return message

        async def writing(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            else:
                answered.append(message.get("body", b""))
            await send(message)

        await self.app(scope, reading, writing)
        cid = _conversation_id(b"".join(sent), b"".join(answered))
        if status and 200 <= status[0] < 300 and cid:
            async with httpx.AsyncClient() as http:
                headers = {"X-Webhook-Key": KEY}
                await http.post(self.url, json={"conversation_id": cid}, headers=headers)


class StaleAssigneeWins:
    """findesk, plus a stand-in for a helpdesk that lets Fin's assignee win: before an update of
    Fin's that names an agent, the conversation is handed back to Fin (by a human, through the
    agent API), so that Fin's stale assignee is what shows."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.base_url = ""
        self.token = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _fin_write(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("assignee_id"):
            async with httpx.AsyncClient(base_url=f"{self.base_url}/api/v1") as http:
                await http.post(
                    f"/conversations/{payload['conversation_id']}/hand-back",
                    headers={"Authorization": f"Bearer {self.token}"},
                )
        await self.app(scope, replayed(body, then=receive), send)


def _fin_write(scope: Scope) -> bool:
    """Whether the request is one of Fin's writes to the Fin API."""
    return (
        scope["type"] == "http"
        and scope["path"].startswith("/api/fin")
        and scope["method"] != "GET"
    )


def _conversation_id(request: bytes, response: bytes) -> str | None:
    for raw in (request, response):
        try:
            payload = json.loads(raw)
        except ValueError:
            continue
        if isinstance(payload, dict):
            if payload.get("conversation_id"):
                return str(payload["conversation_id"])
            conversation = payload.get("conversation")
            if isinstance(conversation, dict) and conversation.get("id"):
                return str(conversation["id"])
    return None


class SloppyNotifier:
    """Stands in for a helpdesk's notifier that delivers at least once but carelessly: one call
    per human message (no coalescing), a new Idempotency-Key on each attempt, Retry-After
    ignored, and pauses that shrink (0.3 s, then 0.15 s, 0.1 s...) instead of growing. It finds
    the messages by watching findesk's database (findesk itself notifies nobody here)."""

    def __init__(self, live: LiveServer, url: str) -> None:
        self.live, self.url = live, url
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SloppyNotifier:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        seen: set[str] = set()
        human = (StoredMessage.author_agent_id.is_not(None)) & (
            StoredMessage.author_agent_id != self.live.fin_agent_id
        )
        with httpx.Client(timeout=1.0) as http:
            while not self.stopping.is_set():
                with self.live.db.read_session() as session:
                    rows = session.execute(
                        select(StoredMessage.id, StoredMessage.conversation_id).where(human)
                    ).all()
                for message_id, cid in rows:
                    if message_id not in seen:
                        seen.add(message_id)
                        self._deliver(http, cid)
                self.stopping.wait(0.02)

    def _deliver(self, http: httpx.Client, cid: str) -> None:
        for attempt in range(1, 10):
            headers = {"X-Webhook-Key": KEY, "Idempotency-Key": uuid.uuid4().hex}
            try:
                sent = http.post(self.url, json={"conversation_id": cid}, headers=headers)
                if sent.status_code < 300:
                    return
            except httpx.TimeoutException:
                pass
            if self.stopping.wait(0.3 / attempt):
                return


def start_findesk(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: str,
    url: str | None,
    *,
    key: str = KEY,
    wrapper: Callable[[ASGIApp], ASGIApp] | None = None,
    **settings: Any,
) -> LiveServer:
    overrides: dict[str, Any] = {"fin_webhook_key": key, **FAST_NOTIFIER, **settings}
    if url is not None:
        overrides["fin_webhook_url"] = url
    live = LiveServer(database_url(backend, request, tmp_path), overrides)
    if wrapper is None:
        return live.start()
    real = support.server.create_app
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(support.server, "create_app", lambda *a: wrapper(real(*a)))
        return live.start()


def trigger_for(live: LiveServer, tmp_path: Path) -> str:
    """The shell command that plays the human: replies through findesk's agent API."""
    script = tmp_path / "trigger.py"
    script.write_text(SCRIPT)
    _, token = live.new_agent(f"script-{tmp_path.name}@example.com", "Scripted Sam")
    words = [shlex.quote(sys.executable), shlex.quote(str(script)), live.base_url, token]
    return " ".join([*words, "{conversation_id}"])


def check(
    live: LiveServer, listener: WebhookListener, trigger: str, wait: float = 20, hold: float = 10
) -> dict[str, Result]:
    client_id, secret = live.new_oauth_client("conformance")
    config = Config(
        base_url=f"{live.base_url}/api/fin",
        token_url=f"{live.base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
        fin_agent_id=live.fin_agent_id,
    )
    options = InteractiveOptions(
        KEY, INTEGRATION, wait=wait, echo_window=0.5, retry_after=1, hold=hold, slow=0.5
    )
    prompt = command_prompt(trigger, timeout=30)
    results = {r.name: r for r in run_interactive(config, listener, options, prompt)}
    assert WEBHOOK_CHECKS <= set(results)
    return results


def not_passed(results: dict[str, Result]) -> dict[str, str]:
    return {n: f"{r.outcome}: {r.reason}" for n, r in results.items() if r.outcome != "passed"}


def failed(results: dict[str, Result], level: str) -> set[str]:
    return {n for n, r in results.items() if r.outcome == "failed" and r.level == level}


def test_findesk_passes_every_webhook_check_with_a_trigger_command(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    live = start_findesk(request, tmp_path, backend, listener.url(INTEGRATION))
    try:
        started = time.monotonic()
        results = check(live, listener, trigger_for(live, tmp_path))
        took = time.monotonic() - started
        assert not_passed(results) == {}
        typed = [c for c in listener.calls if c.is_typing]  # the listener serves every test
        cid = typed[-1].payload["conversation_id"]
        race = live.fin_world().api.get_conversation(cid).data
    finally:
        live.stop()
    assert took < 30
    # What the helpdesk went through: every fault once, then its delivery was accepted.
    made = [c for c in listener.calls if c.mentions(cid) and not c.is_typing and c.planned]
    assert [c.answer.label for c in made[:4]] == [
        "500",
        "429 with Retry-After: 1",
        "held 10 s",
        "202 after 0.5 s",
    ]
    assert made[2].gave_up and 1.3 < made[2].seconds < 5
    assert made[1].header("x-findesk-delivery") == made[0].header("x-findesk-delivery")
    assert made[2].at - made[1].ended_at >= 1  # type: ignore[operator]  # Retry-After: 1
    # The race: Fin's stale assignee did not win, its title did.
    assert race["assignee"]["id"] != live.fin_agent_id
    assert race["title"].startswith("Conformance race ")


def test_a_helpdesk_that_never_retries_fails_the_retry_check(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    live = start_findesk(
        request,
        tmp_path,
        backend,
        listener.url(INTEGRATION),
        notifier_backoff_base_seconds=3600,
        notifier_backoff_max_seconds=3600,
    )
    try:
        results = check(live, listener, trigger_for(live, tmp_path), wait=4)
    finally:
        live.stop()
    assert failed(results, "required") == {"webhook.retry_5xx"}, not_passed(results)
    retry = results["webhook.retry_5xx"]
    assert retry.reason.startswith("the call answered 500 was not retried within 4 s")
    assert retry.request is not None and retry.request.status == 500
    assert results["webhook.retry_timeout"].outcome == "skipped"
    assert "no attempt was answered by holding it" in results["webhook.retry_timeout"].reason
    assert results["webhook.coalesced"].reason.startswith("skipped because the reply's")
    for name in ("webhook.notified", "reply.visible", "webhook.key", "ownership.race"):
        assert results[name].outcome == "passed", results[name]


def test_a_helpdesk_that_never_notifies_fails_as_such(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    live = start_findesk(request, tmp_path, backend, None)  # no webhook URL configured
    try:
        results = check(live, listener, trigger_for(live, tmp_path), wait=3)
    finally:
        live.stop()
    assert failed(results, "required") == {"webhook.notified"}, not_passed(results)
    assert failed(results, "recommended") == set(), not_passed(results)
    assert results["webhook.notified"].reason.startswith("no webhook call for conversation")
    for name in ("webhook.retry_5xx", "webhook.key", "webhook.sync_body", "webhook.coalesced"):
        assert results[name].outcome == "skipped"
        assert "because webhook.notified failed" in results[name].reason
    # The race needs no webhook: the script's reply took the conversation over.
    assert results["ownership.race"].outcome == "passed"


def test_a_wrong_webhook_key_fails_the_key_check_only(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    live = start_findesk(request, tmp_path, backend, listener.url(INTEGRATION), key="nope")
    try:
        results = check(live, listener, trigger_for(live, tmp_path))
    finally:
        live.stop()
    assert not_passed(results).keys() == {"webhook.key"}, not_passed(results)
    assert "X-Webhook-Key differs from the configured key" in results["webhook.key"].reason


def test_a_helpdesk_that_echoes_fins_writes_fails_no_echo(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    url = listener.url(INTEGRATION)
    live = start_findesk(request, tmp_path, backend, url, wrapper=lambda app: Echoer(app, url))
    try:
        results = check(live, listener, trigger_for(live, tmp_path))
    finally:
        live.stop()
    assert not_passed(results).keys() == {"webhook.no_echo"}, not_passed(results)
    echo = results["webhook.no_echo"]
    assert echo.level == "recommended" and echo.outcome == "failed"
    assert "sync call(s) for the conversation arrived before the operator was asked" in (
        echo.reason
    )
    assert "within the 0.5 s grace window" in echo.reason


def test_a_helpdesk_where_fins_stale_assignee_wins_fails_the_race(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    wrappers: list[StaleAssigneeWins] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        wrappers.append(StaleAssigneeWins(app))
        return wrappers[-1]

    live = start_findesk(request, tmp_path, backend, listener.url(INTEGRATION), wrapper=wrap)
    wrappers[0].base_url = live.base_url
    _, wrappers[0].token = live.new_agent(f"racer-{tmp_path.name}@example.com", "Racer")
    try:
        results = check(live, listener, trigger_for(live, tmp_path))
    finally:
        live.stop()
    assert not_passed(results).keys() == {"ownership.race"}, not_passed(results)
    race = results["ownership.race"]
    assert race.level == "recommended"
    assert race.reason.startswith(
        f"the answer shows the conversation assigned to the Fin agent {live.fin_agent_id!r}"
    )
    assert "(the contract is silent; findesk keeps the human)" in race.reason
    assert race.request is not None and race.request.method == "PUT"


def test_a_careless_notifier_fails_the_recommended_delivery_checks(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    """It retries (the required checks pass) but ignores Retry-After, shrinks its pauses,
    changes its delivery id and sends a call per change."""
    live = start_findesk(request, tmp_path, backend, None)
    try:
        with SloppyNotifier(live, listener.url(INTEGRATION)):
            results = check(live, listener, trigger_for(live, tmp_path))
    finally:
        live.stop()
    assert failed(results, "required") == set(), not_passed(results)
    assert failed(results, "recommended") == {
        "webhook.retry_after",
        "webhook.backoff",
        "webhook.delivery_id",
        "webhook.coalesced",
    }, not_passed(results)
    assert "after a 429 with Retry-After: 1: too soon" in results["webhook.retry_after"].reason
    assert "they should grow (exponential back-off)" in results["webhook.backoff"].reason
    assert results["webhook.delivery_id"].reason.startswith(
        "Idempotency-Key changed between attempts of one notification"
    )
    assert results["webhook.coalesced"].reason.startswith("3 quick replies caused 3 webhook")
    for name in ("webhook.retry_5xx", "webhook.retry_timeout", "webhook.key"):
        assert results[name].outcome == "passed", results[name]


def test_a_hold_shorter_than_the_helpdesks_timeout_skips_the_timeout_check(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    url = listener.url(INTEGRATION)
    live = start_findesk(request, tmp_path, backend, url, notifier_timeout_seconds=5)
    try:
        results = check(live, listener, trigger_for(live, tmp_path), hold=1)
    finally:
        live.stop()
    assert not_passed(results).keys() == {"webhook.retry_timeout", "webhook.backoff"}
    assert results["webhook.backoff"].reason.startswith(
        "skipped because there is no pause after a timeout"
    )
    timeout = results["webhook.retry_timeout"]
    assert timeout.outcome == "skipped"
    assert timeout.reason.startswith("the helpdesk waited the whole 1.0 s the listener held")
    assert "(--webhook-hold)" in timeout.reason


def test_a_failing_trigger_command_is_reported_with_its_output(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, listener: WebhookListener
) -> None:
    live = start_findesk(request, tmp_path, backend, listener.url(INTEGRATION))
    try:
        results = check(live, listener, "echo 'cannot reach the helpdesk' >&2; exit 7", wait=2)
    finally:
        live.stop()
    notified = results["webhook.notified"]
    assert notified.outcome == "failed"
    assert notified.reason == (
        "the trigger command (action reply) exited with code 7; its output: "
        "cannot reach the helpdesk"
    )


# --- without a database ----------------------------------------------------------------------


def test_the_trigger_command_gets_the_conversation_and_action(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    prompt = command_prompt(
        f'echo "{{conversation_id}} $FINDESK_CONFORMANCE_CONVERSATION_ID '
        f'$FINDESK_CONFORMANCE_ACTION" > {out}'
    )
    prompt(Instruction("c-42", "u", "m", 1, "http://x", "take_over"))
    assert out.read_text() == "c-42 c-42 take_over\n"


def test_a_trigger_command_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    prompt = command_prompt("echo started; sleep 30", timeout=1)
    started = time.monotonic()
    with pytest.raises(Failed) as failure:
        prompt(Instruction("c-1", "u", "m", 1, "http://x"))
    assert time.monotonic() - started < 10
    assert failure.value.reason == (
        "the trigger command (action reply) did not finish within 1 s; its output: started"
    )


def test_the_listener_answers_as_planned(listener: WebhookListener) -> None:
    hook = listener.url(INTEGRATION)
    listener.plan(
        "planned",
        [
            Answer(500),
            Answer(429, retry_after=7),
            Answer(202, delay=10, hold=True),
            Answer(202, delay=0.3),
        ],
    )
    body = {"conversation_id": "planned"}
    with httpx.Client(timeout=5) as http:
        assert http.post(hook, json={"conversation_id": "other"}).status_code == 202
        assert http.post(hook, json=body).status_code == 500
        limited = http.post(hook, json=body)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
        with pytest.raises(httpx.ReadTimeout):
            http.post(hook, json=body, timeout=0.5)
        assert http.post(hook, json=body).status_code == 202
        assert http.post(hook, json=body).status_code == 202
    made = [c for c in listener.calls if c.mentions("planned")]
    assert [c.planned for c in made] == [True, True, True, True, False]
    held, slow = made[2], made[3]
    assert listener.wait_until(lambda _: held.ended_at is not None, time.monotonic() + 5)
    assert held.gave_up and 0.4 < held.seconds < 5
    assert held.outcome.startswith("held 10 s: the helpdesk gave up after")
    assert not slow.gave_up and slow.seconds >= 0.3


# --- the command line --------------------------------------------------------------------


def test_the_cli_runs_the_trigger_command_without_a_terminal(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}{HOOK_PREFIX}{INTEGRATION}"
    live = start_findesk(request, tmp_path, backend, url)
    try:
        client_id, secret = live.new_oauth_client("conformance")
        done = subprocess.run(
            [
                sys.executable, "-m", "findesk", "conformance",
                "--base-url", f"{live.base_url}/api/fin",
                "--token-url", f"{live.base_url}/oauth/token",
                "--client-id", client_id, "--client-secret", secret,
                "--fin-agent-id", live.fin_agent_id,
                "--interactive", "--listen", f"127.0.0.1:{port}",
                "--webhook-key", KEY, "--integration-id", INTEGRATION,
                "--trigger-command", trigger_for(live, tmp_path), "--trigger-timeout", "30",
                "--wait", "30", "--webhook-hold", "10", "--webhook-slow", "0.5",
                "--echo-window", "0.5", "--json",
            ],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    finally:
        live.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Your turn" not in done.stdout + done.stderr  # nobody was asked
    report = json.loads(done.stdout)
    outcomes = {r["name"]: r["outcome"] for r in report["results"]}
    assert {n: outcomes.get(n) for n in WEBHOOK_CHECKS} == dict.fromkeys(WEBHOOK_CHECKS, "passed")
    assert report["ok"] is True
