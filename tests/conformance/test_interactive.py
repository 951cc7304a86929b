"""The interactive part of the conformance suite, against a live findesk whose notifier calls the
suite's webhook listener. The "operator" is the test: it replies through findesk's agent API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from support.server import LiveServer, free_port

from findesk.conformance.checks import Config
from findesk.conformance.interactive import (
    HOOK_PREFIX,
    Instruction,
    InteractiveOptions,
    WebhookListener,
    run_interactive,
)
from findesk.conformance.runner import Result
from findesk.conversations.models import Conversation

KEY = "conformance-webhook-key"
INTEGRATION = "conformance"
INTERACTIVE = {
    "interactive.handover",
    "webhook.notified",
    "reply.visible",
    "reply.owner",
    "webhook.post_json",
    "webhook.key",
    "webhook.integration_id",
    "webhook.sync_body",
    "webhook.typing",
    "webhook.no_echo",
    "webhook.retry_5xx",
    "webhook.retry_timeout",
    "webhook.retry_after",
    "webhook.backoff",
    "webhook.delivery_id",
    "webhook.coalesced",
    "ownership.race",
}
# The notifier gives up on a held call after a second and backs off briefly, to keep runs short.
FAST_NOTIFIER = {
    "notifier_poll_seconds": 0.1,
    "notifier_timeout_seconds": 1.0,
    "notifier_backoff_base_seconds": 1.0,  # growth (≥ 1 s) stands out from a loaded machine
}


def findesk_calling(url: str, tmp: Path, key: str = KEY) -> LiveServer:
    return LiveServer(
        f"sqlite:///{tmp / 'findesk.db'}",
        {"fin_webhook_url": url, "fin_webhook_key": key, **FAST_NOTIFIER},
    ).start()


@pytest.fixture(scope="module")
def listener() -> Iterator[WebhookListener]:
    with WebhookListener("127.0.0.1", 0) as started:
        yield started


@pytest.fixture(scope="module")
def findesk(
    listener: WebhookListener, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = findesk_calling(listener.url(INTEGRATION), tmp_path_factory.mktemp("findesk"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def findesk_wrong_key(
    listener: WebhookListener, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = listener.url(INTEGRATION)
    live = findesk_calling(url, tmp_path_factory.mktemp("wrong"), key="not-the-key")
    yield live
    live.stop()


def config_for(live: LiveServer) -> Config:
    client_id, secret = live.new_oauth_client("conformance")
    return Config(
        base_url=f"{live.base_url}/api/fin",
        token_url=f"{live.base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
        fin_agent_id=live.fin_agent_id,
    )


def an_operator(
    live: LiveServer, listener: WebhookListener | None = None, visibility: str = "public"
) -> tuple[Callable[[Instruction], None], list[Instruction], str]:
    """A prompt that replies as a new human agent (typing first when ``listener`` is given, and
    waiting until that typing call arrived, so that the typing check has something to check)."""
    agent = live.agent_http(f"operator-{uuid.uuid4().hex[:6]}@example.com", "Olivia Operator")
    asked: list[Instruction] = []

    def reply(instruction: Instruction) -> None:
        asked.append(instruction)
        cid = instruction.conversation_id
        if instruction.action == "take_over":
            assert agent.post(f"/conversations/{cid}/take-over").status_code == 200
            return
        if instruction.action == "replies":
            for n in range(3):
                body = {"body": f"<p>Quick {n}</p>", "visibility": visibility}
                assert agent.post(f"/conversations/{cid}/messages", json=body).status_code == 201
            return
        if listener is not None:
            assert agent.post(f"/conversations/{cid}/typing").status_code == 202
            typed = listener.wait_for(
                lambda c: c.is_typing and c.mentions(cid), time.monotonic() + 10
            )
            assert typed is not None
        sent = agent.post(
            f"/conversations/{cid}/messages",
            json={"body": "<p>Hello, Olivia here.</p>", "visibility": visibility},
        )
        assert sent.status_code == 201, sent.text

    return reply, asked, str(agent.agent_id)  # type: ignore[attr-defined]


def run(
    live: LiveServer,
    listener: WebhookListener,
    prompt: Callable[[Instruction], None],
    **options: float | str,
) -> dict[str, Result]:
    chosen = InteractiveOptions(
        **{
            "webhook_key": KEY,
            "integration_id": INTEGRATION,
            "wait": 30,
            "echo_window": 0.5,
            "retry_after": 1,
            "slow": 0.5,
        }
        | options  # type: ignore[arg-type]
    )
    results = list(run_interactive(config_for(live), listener, chosen, prompt))
    assert sorted(r.name for r in results) == sorted(INTERACTIVE)
    return {r.name: r for r in results}


def test_every_interactive_check_passes_against_findesk(
    findesk: LiveServer, listener: WebhookListener
) -> None:
    operator, asked, agent_id = an_operator(findesk, listener)
    results = run(findesk, listener, operator)
    assert {n: r.reason for n, r in results.items() if r.outcome != "passed"} == {}
    assert [i.action for i in asked] == ["reply", "replies"]
    instruction = asked[0]
    text = instruction.text
    for shown in (
        instruction.conversation_id,
        instruction.user_name,
        instruction.first_message,
        "reply to it in your helpdesk as a human agent",
        "30 s",
        listener.url(INTEGRATION),
    ):
        assert shown in text
    # What the checks saw: findesk's sync call for the reply, and the reply by the operator.
    cid = instruction.conversation_id
    sync = [c for c in listener.calls if c.mentions(cid) and not c.is_typing]
    assert sync and all(c.payload == {"conversation_id": cid} for c in sync)
    assignee = findesk.fin_world().api.get_conversation(cid).data["assignee"]
    assert assignee["id"] == agent_id


def test_a_wrong_webhook_key_is_reported(
    findesk_wrong_key: LiveServer, listener: WebhookListener
) -> None:
    operator, _, _ = an_operator(findesk_wrong_key)
    results = run(findesk_wrong_key, listener, operator)
    key = results["webhook.key"]
    assert key.outcome == "failed"
    assert "X-Webhook-Key differs from the configured key" in key.reason
    assert "not-the-key" not in key.reason
    assert key.request is not None
    assert key.request.url == listener.url(INTEGRATION)
    assert key.request.method == "POST"
    assert {n for n, r in results.items() if r.outcome == "failed"} == {"webhook.key"}
    for name in ("webhook.notified", "reply.visible", "webhook.sync_body"):
        assert results[name].outcome == "passed", results[name]
    assert results["webhook.typing"].outcome == "skipped"


def test_a_call_for_another_integration_id_is_reported(
    findesk: LiveServer, listener: WebhookListener
) -> None:
    operator, _, _ = an_operator(findesk)
    results = run(findesk, listener, operator, integration_id="someone-else")
    failed = results["webhook.integration_id"]
    assert failed.outcome == "failed"
    assert failed.reason == (
        f"called {HOOK_PREFIX}{INTEGRATION}, expected {HOOK_PREFIX}someone-else"
    )
    assert {n for n, r in results.items() if r.outcome == "failed"} == {"webhook.integration_id"}


def test_nobody_replying_is_a_clear_failure_not_a_hang(
    findesk: LiveServer, listener: WebhookListener
) -> None:
    asked: list[Instruction] = []
    started = time.monotonic()
    results = run(findesk, listener, asked.append, wait=1)
    assert time.monotonic() - started < 15
    notified = results["webhook.notified"]
    assert notified.outcome == "failed"
    cid = asked[0].conversation_id
    assert notified.reason.startswith(f"no webhook call for conversation {cid} within 1 s")
    assert results["interactive.handover"].outcome == "passed"
    assert results["reply.visible"].outcome == "skipped"
    assert results["reply.visible"].reason == "skipped because webhook.notified failed"
    for name in ("webhook.post_json", "webhook.key", "webhook.sync_body"):
        assert results[name].outcome == "skipped"
        assert results[name].reason.startswith("skipped because webhook.notified failed")


def test_a_private_note_is_not_a_reply(findesk: LiveServer, listener: WebhookListener) -> None:
    operator, _, _ = an_operator(findesk, visibility="private")
    results = run(findesk, listener, operator, wait=2)
    assert results["webhook.notified"].outcome == "passed"  # a note is a change Fin hears of
    visible = results["reply.visible"]
    assert visible.outcome == "failed"
    assert "shows no public reply by an agent (private message by agent" in visible.reason
    assert results["reply.owner"].reason == "skipped because reply.visible failed"


def test_an_echo_of_fins_own_changes_is_a_recommended_failure(
    findesk: LiveServer, listener: WebhookListener
) -> None:
    """A helpdesk that echoes: the suite's new conversation is announced before anyone replied
    (acted out by calling the listener as soon as the conversation shows in findesk)."""
    with findesk.db.read_session() as session:
        before = set(session.scalars(select(Conversation.id)))
    echoed: list[str] = []

    def echo() -> None:
        deadline = time.monotonic() + 20
        while not echoed and time.monotonic() < deadline:
            with findesk.db.read_session() as session:
                new = set(session.scalars(select(Conversation.id))) - before
            for cid in new:
                headers = {"X-Webhook-Key": KEY}
                httpx.post(
                    listener.url(INTEGRATION), json={"conversation_id": cid}, headers=headers
                )
                echoed.append(cid)
            time.sleep(0.02)

    echoer = threading.Thread(target=echo)
    echoer.start()
    operator, asked, _ = an_operator(findesk)
    try:
        results = run(findesk, listener, operator, echo_window=5)
    finally:
        echoer.join()
    assert echoed == [asked[0].conversation_id]
    no_echo = results["webhook.no_echo"]
    assert no_echo.outcome == "failed" and no_echo.level == "recommended"
    assert no_echo.reason.startswith("1 sync call(s) for the conversation arrived")
    assert "the helpdesk echoes Fin's own changes back" in no_echo.reason
    assert no_echo.request is not None and no_echo.request.url == listener.url(INTEGRATION)
    # The echo is not taken for the notification of the reply, which still comes and shows.
    assert {n for n, r in results.items() if r.outcome != "passed"} == {
        "webhook.no_echo",
        "webhook.typing",
    }


def test_a_failing_handover_step_hides_no_webhook_check(
    findesk: LiveServer, listener: WebhookListener
) -> None:
    """The handover step fails (Fin's answer is refused: the configured Fin agent does not
    exist), yet the conversation exists, so the operator is asked and every webhook check runs
    on the call that comes."""
    operator, asked, _ = an_operator(findesk)
    config = replace(config_for(findesk), fin_agent_id="conf-no-such-agent")
    options = InteractiveOptions(KEY, INTEGRATION, wait=30, echo_window=0.5)
    results = {r.name: r for r in run_interactive(config, listener, options, operator)}
    handover = results["interactive.handover"]
    assert handover.outcome == "failed" and "Fin's answer" in handover.reason
    assert [i.action for i in asked] == ["reply", "replies"]
    for name in (
        "webhook.notified",
        "reply.visible",
        "webhook.post_json",
        "webhook.key",
        "webhook.integration_id",
        "webhook.sync_body",
    ):
        assert results[name].outcome == "passed", results[name]
    assert results["reply.owner"].level == "recommended"


def test_the_listener_answers_202_under_the_webhook_path_only(listener: WebhookListener) -> None:
    hook = listener.url("whatever")
    assert httpx.post(hook, json={"conversation_id": "x"}).status_code == 202
    assert httpx.get(hook).status_code == 404
    assert httpx.post(f"{listener.base_url}/elsewhere", json={}).status_code == 404
    chunked = httpx.post(hook, content=iter([b'{"conversation_id": ', b'"chunked"}']))
    assert chunked.status_code == 202
    last = listener.calls[-1]
    assert last.payload == {"conversation_id": "chunked"}
    assert last.header("transfer-encoding") == ["chunked"]


# --- the command line ------------------------------------------------------------------------


def conformance_cli(live: LiveServer, *extra: str) -> subprocess.Popen[str]:
    client_id, secret = live.new_oauth_client("conformance")
    return subprocess.Popen(
        [
            sys.executable, "-m", "findesk", "conformance",
            "--base-url", f"{live.base_url}/api/fin",
            "--token-url", f"{live.base_url}/oauth/token",
            "--client-id", client_id, "--client-secret", secret,
            "--fin-agent-id", live.fin_agent_id, *extra,
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_the_cli_asks_on_stderr_and_reports_in_one_json(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}{HOOK_PREFIX}{INTEGRATION}"
    live = findesk_calling(url, tmp_path)
    agent = live.agent_http("cli-operator@example.com", "Cleo")
    process = conformance_cli(
        live, "--interactive", "--listen", f"127.0.0.1:{port}", "--webhook-key", KEY,
        "--wait", "60", "--json", "--webhook-slow", "0.5", "--echo-window", "0.5",
    )  # fmt: skip
    watchdog = threading.Timer(240, process.kill)
    errors: list[str] = []
    replied: list[str] = []

    def operator() -> None:  # reads the prompt as a person would, and replies
        assert process.stderr is not None
        cid = ""
        for line in process.stderr:
            errors.append(line)
            if "conversation id:" in line:
                cid = line.split("conversation id:", 1)[1].strip()
            if "reply to it in your helpdesk as a human agent" in line:
                sent = agent.post(f"/conversations/{cid}/messages", json={"body": "<p>Hi!</p>"})
                replied.append(f"{cid} {sent.status_code}")
            if "times in quick succession" in line:  # several quick replies
                for n in range(3):
                    agent.post(f"/conversations/{cid}/messages", json={"body": f"<p>{n}</p>"})

    reader = threading.Thread(target=operator)
    watchdog.start()
    reader.start()
    try:
        assert process.stdout is not None
        stdout = process.stdout.read()
        process.wait(timeout=30)
        reader.join(timeout=30)
    finally:
        watchdog.cancel()
        process.kill()
        live.stop()
    stderr = "".join(errors)
    assert process.returncode == 0, stdout + stderr
    assert f"configure the helpdesk to call {url}" in stderr
    assert "reply to it in your helpdesk as a human agent" in stderr
    assert len(replied) == 1 and replied[0].endswith(" 201")
    report = json.loads(stdout)
    failed = {r["name"]: r["reason"] for r in report["results"] if r["outcome"] == "failed"}
    assert report["ok"] is True and failed == {}
    outcomes = {r["name"]: r["outcome"] for r in report["results"]}
    assert INTERACTIVE <= set(outcomes)
    assert "token.json_body" in outcomes  # the normal checks first, in the same report
    assert list(outcomes)[-len(INTERACTIVE) :] == [n for n in outcomes if n in INTERACTIVE]
    assert outcomes["webhook.typing"] == "skipped"
    assert {n: o for n, o in outcomes.items() if n in INTERACTIVE and o != "passed"} == {
        "webhook.typing": "skipped"
    }


def test_the_cli_in_text_mode_reports_nobody_replying(tmp_path: Path) -> None:
    port = free_port()
    live = findesk_calling(f"http://127.0.0.1:{port}{HOOK_PREFIX}{INTEGRATION}", tmp_path)
    try:
        process = conformance_cli(
            live, "--interactive", "--listen", f"127.0.0.1:{port}", "--webhook-key", KEY,
            "--wait", "1",
        )  # fmt: skip
        stdout, stderr = process.communicate(timeout=120)
    finally:
        live.stop()
    assert process.returncode == 1, stdout + stderr
    lines = stdout.splitlines()
    assert "conversation id:" in stdout and "Waiting up to 1 s" in stdout
    fail = next(line for line in lines if line.startswith("FAIL"))
    assert fail.startswith("FAIL webhook.notified: no webhook call for conversation")
    assert "PASS interactive.handover" in lines
    assert "required: " in lines[-1] and ", 1 failed;" in lines[-1]
    assert lines[-1].endswith("=> FAIL")


def test_the_cli_needs_a_webhook_key_for_interactive() -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "findesk", "conformance", "--base-url", "http://127.0.0.1:9/x",
            "--token-url", "http://127.0.0.1:9/t", "--client-id", "a", "--client-secret", "b",
            "--interactive",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2  # a usage error
    assert "--interactive needs --webhook-key" in done.stderr
