"""``findesk doctor``, run for real against a live findesk: what a deployment that works looks
like, and that each broken piece (the client's secret, the webhook, request signing) is named
with what to fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import Cli
from support.receiver import WEBHOOK_KEY, Receiver, notifier_settings
from support.server import LiveServer, free_port

SIGNING_SECRET = "a-long-random-hmac-key-from-fins-settings"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('doctor') / 'findesk.db'}"
    server = LiveServer(url, notifier_settings(receiver)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A findesk that checks request signatures."""
    url = f"sqlite:///{tmp_path_factory.mktemp('doctor-signed') / 'findesk.db'}"
    server = LiveServer(url, {"fin_signing_secret": SIGNING_SECRET}).start()
    yield server
    server.stop()


def doctor_cli(tmp_path: Path, live: LiveServer, webhook_url: str) -> Cli:
    """The command line of the machine findesk is deployed on: the same settings."""
    cli = Cli(tmp_path / "data")
    for name in [n for n in cli.env if n.lower().endswith("_proxy")]:
        del cli.env[name]  # loopback, called directly (as the test server's notifier does)
    cli.env["FINDESK_PUBLIC_BASE_URL"] = live.base_url
    cli.env["FINDESK_FIN_WEBHOOK_URL"] = webhook_url
    cli.env["FINDESK_FIN_WEBHOOK_KEY"] = WEBHOOK_KEY
    return cli


def run(cli: Cli, live: LiveServer, *args: str, secret: str | None = None) -> tuple[int, str]:
    client_id, real_secret = live.new_oauth_client("Fin production")
    result = cli.run(
        "doctor",
        "--client-id",
        client_id,
        "--client-secret-stdin",
        *args,
        input=(secret or real_secret) + "\n",
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


def statuses(output: str) -> dict[str, str]:
    """Each check's name and status, from the one line it printed."""
    found = {}
    for line in output.splitlines()[:-1]:  # the last line is the summary
        status, rest = line.split(maxsplit=1)
        name = rest[:20].strip()
        found[name] = status
    return found


def test_a_working_deployment_is_all_ok(
    tmp_path: Path, live: LiveServer, receiver: Receiver
) -> None:
    calls_before = len(receiver.log)
    code, out = run(doctor_cli(tmp_path, live, receiver.hook_url()), live)

    assert code == 0, out
    assert len(receiver.log) == calls_before  # the webhook is called only with --send-webhook
    found = statuses(out)
    assert set(found.values()) <= {"ok", "skip"}, out
    for check in ("public URL", "findesk ready", "token endpoint", "request signing"):
        assert found[check] == "ok", out
    for check in ("get agents", "get user", "get conversation", "get messages", "webhook"):
        assert found[check] == "ok", out
    assert found["write operations"] == "skip", out
    [agents] = [line for line in out.splitlines() if line.startswith("ok    get agents")]
    assert live.fin_agent_id in agents and "fin@findesk.invalid" in agents


def test_write_and_send_webhook_with_a_real_conversation(
    tmp_path: Path, live: LiveServer, receiver: Receiver
) -> None:
    world = live.fin_world()
    conversation, _ = world.conversation()
    before = len(receiver.for_conversation(conversation["id"]))

    code, out = run(
        doctor_cli(tmp_path, live, receiver.hook_url()),
        live,
        "--write",
        "--send-webhook",
        "--conversation-id",
        conversation["id"],
        "--variant",
        "posts-only",
        "--token-format",
        "form",
    )

    assert code == 0, out
    found = statuses(out)
    for check in (
        "get conversation",
        "get user",
        "get messages",
        "create user",
        "update user",
        "create conversation",
        "create message",
        "update conversation",
        "webhook",
        "webhook call",
    ):
        assert found[check] == "ok", out
    assert conversation["user"]["id"] in out
    calls = receiver.for_conversation(conversation["id"])
    assert len(calls) == before + 1, out
    assert calls[-1].headers["X-Webhook-Key"] == WEBHOOK_KEY


def test_a_wrong_secret_fails_at_the_token_endpoint(
    tmp_path: Path, live: LiveServer, receiver: Receiver
) -> None:
    code, out = run(doctor_cli(tmp_path, live, receiver.hook_url()), live, secret="not-it")

    assert code == 1, out
    [line] = [line for line in out.splitlines() if line.startswith("FAIL  token endpoint")]
    assert "401" in line and "findesk clients" in line, line
    assert "not-it" not in out


def test_a_webhook_target_on_a_closed_port_fails(tmp_path: Path, live: LiveServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hooks/standalone/custom_helpdesk_conversation_event/x"
    code, out = run(doctor_cli(tmp_path, live, closed), live)

    assert code == 1, out
    found = statuses(out)
    assert found["webhook"] == "FAIL", out
    assert found["token endpoint"] == "ok", out
    [line] = [line for line in out.splitlines() if line.startswith("FAIL  webhook")]
    assert "cannot connect" in line and "FINDESK_FIN_WEBHOOK_URL" in line, line


def test_json_output_parses(tmp_path: Path, live: LiveServer) -> None:
    cli = doctor_cli(tmp_path, live, "http://127.0.0.1:1/hooks/x")
    code, out = run(cli, live, "--json")

    assert code == 1
    report = json.loads(out)  # one JSON document, nothing else on stdout
    assert report["ok"] is False and report["base_url"] == live.base_url
    by_name = {check["name"]: check for check in report["checks"]}
    assert by_name["token endpoint"]["status"] == "ok"
    assert by_name["webhook"]["status"] == "fail" and by_name["webhook"]["fix"]
    assert by_name["get agents"]["request"]["url"].endswith("/api/fin/agents")


def test_request_signing_must_agree_with_the_server(
    tmp_path: Path, live: LiveServer, signed: LiveServer, receiver: Receiver
) -> None:
    # The server checks signatures and doctor signs with the same secret: all ok.
    cli = doctor_cli(tmp_path, signed, receiver.hook_url())
    cli.env["FINDESK_FIN_SIGNING_SECRET"] = SIGNING_SECRET
    code, out = run(cli, signed)
    assert code == 0, out
    assert statuses(out)["request signing"] == "ok" and "refused an unsigned" in out

    # Doctor without the secret: every call is refused; the report says which setting.
    del cli.env["FINDESK_FIN_SIGNING_SECRET"]
    code, out = run(cli, signed)
    assert code == 1, out
    [line] = [line for line in out.splitlines() if line.startswith("FAIL  request signing")]
    assert "FINDESK_FIN_SIGNING_SECRET" in line

    # A secret here that the server does not have: it would take unsigned calls.
    cli = doctor_cli(tmp_path, live, receiver.hook_url())
    cli.env["FINDESK_FIN_SIGNING_SECRET"] = SIGNING_SECRET
    code, out = run(cli, live)
    assert code == 1, out
    assert "does not check signatures" in out
