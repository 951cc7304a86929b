"""Record a conformance session against findesk and replay it: against a second, fresh findesk
(no difference), against findesk with a rule broken (the difference is shown); and what the
recorded file holds (no secret, no token)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import support.server
from support.server import LiveServer
from test_conformance import Breaker
from test_conformance import broken as broken  # the fixture: findesk behind a Breaker
from test_conformance_signing import SECRET as SIGNING_SECRET
from test_conformance_signing import SigningBreaker
from test_conformance_signing import signed as signed  # the fixture: findesk, signing on

from findesk.conformance.checks import OBSERVERS, Config
from findesk.conformance.record import Recorder, load, recording
from findesk.conformance.runner import run


def findesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "findesk", *args],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def record(live: LiveServer, path: Path, variant: str = "rest") -> subprocess.CompletedProcess[str]:
    client_id, secret = live.new_oauth_client("recorder")
    done = findesk(
        "conformance", "--base-url", f"{live.base_url}/api/fin",
        "--token-url", f"{live.base_url}/oauth/token",
        "--client-id", client_id, "--client-secret", secret, "--variant", variant,
        "--record", str(path),
    )  # fmt: skip
    assert secret not in path.read_text()
    return done


def replay(live: LiveServer, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    client_id, secret = live.new_oauth_client("replayer")
    return findesk(
        "replay", str(path), "--against", f"{live.base_url}/api/fin",
        "--token-url", f"{live.base_url}/oauth/token",
        "--client-id", client_id, "--client-secret", secret, *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fresh(
    request: pytest.FixtureRequest,
    server: LiveServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """A second findesk on the same backend as ``server``, with nothing in it."""
    backend = "postgres" if server.database_url.startswith("postgresql") else "sqlite"
    url = support.server.database_url(backend, request, tmp_path_factory.mktemp("fresh"))
    live = LiveServer(url).start()
    yield live
    live.stop()


@pytest.mark.parametrize("variant", ["rest", "posts-only"])
def test_a_session_replayed_against_a_fresh_helpdesk_shows_no_difference(
    server: LiveServer, fresh: LiveServer, tmp_path: Path, variant: str
) -> None:
    path = tmp_path / "session.jsonl"
    recorded = record(server, path, variant)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert f"Recorded the session in {path}" in recorded.stdout
    header, exchanges = load(path)
    assert header["variant"] == variant and header["base_url"] == f"{server.base_url}/api/fin"
    assert len(exchanges) > 100
    assert {e["method"] for e in exchanges} >= {"POST"}
    assert any(e["status"] == 401 for e in exchanges)  # the refused calls are in it too

    done = replay(fresh, path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"{len(exchanges)} exchanges against "
                                        f"{fresh.base_url}/api/fin: 0 difference(s)")  # fmt: skip


def test_a_replay_shows_how_a_broken_helpdesk_answers_differently(
    broken: tuple[LiveServer, Breaker], tmp_path: Path
) -> None:
    """Recorded against findesk; replayed against the same findesk 'after an upgrade' that
    broke a rule: every difference is printed and the exit code is 1."""
    live, breaker = broken
    path = tmp_path / "session.jsonl"
    assert record(live, path).returncode == 0

    same = replay(live, path)  # the same helpdesk again: new objects, the same answers
    assert same.returncode == 0, same.stdout

    breaker.mode = "status_outside_enum"
    try:
        done = replay(live, path)
    finally:
        breaker.mode = None
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("#")
        and 'POST /api/fin/conversation: $.conversation.status: "open", now "pending"' in line
        for line in lines
    ), done.stdout
    assert any('GET /api/fin/conversation: $.status: "open", now "pending"' in x for x in lines)
    assert lines[-1].startswith("Replayed ") and not lines[-1].endswith(" 0 difference(s)")
    breaker.mode = "status_outside_enum"
    try:
        as_json = json.loads(replay(live, path, "--json").stdout)
    finally:
        breaker.mode = None
    assert as_json["replayed"] == as_json["answered"] == len(load(path)[1])
    assert {"seq", "method", "path", "what"} <= as_json["differences"][0].keys()
    assert any(d["what"] == '$.status: "open", now "pending"' for d in as_json["differences"])

    breaker.mode = "not_idempotent"
    try:
        repeated = replay(live, path)
    finally:
        breaker.mode = None
    assert repeated.returncode == 1
    assert "POST /api/fin/user: status 200, now 201" in repeated.stdout  # a repeat made another
    assert "statuses 9 x 200, 1 x 201, now 10 x 201" in repeated.stdout  # ten at once


def test_the_recorded_session_holds_no_secret_and_no_token(
    server: LiveServer, tmp_path: Path
) -> None:
    client_id, secret = server.new_oauth_client()
    config = Config(
        base_url=f"{server.base_url}/api/fin",
        token_url=f"{server.base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
    )
    issued: list[str] = []
    sent: list[str] = []

    def watch(response: httpx.Response) -> None:  # sees the real values
        data = response.json() if response.headers.get("content-type") == "application/json" else 0
        if isinstance(data, dict) and isinstance(data.get("access_token"), str):
            issued.append(data["access_token"])
        sent.extend(v for k, v in response.request.headers.items() if k == "authorization")

    path = tmp_path / "session.jsonl"
    token = OBSERVERS.set((watch,))
    try:
        with recording(path, config):
            report = run(config)
    finally:
        OBSERVERS.reset(token)
    assert report.ok, report.failures()
    text = path.read_text()
    assert len(issued) >= 3 and sent
    assert secret not in text
    for value in issued:
        assert value not in text
    for header in sent:
        assert header.split(" ", 1)[1] not in text
    first = json.loads(text.splitlines()[1])  # the first token request and its answer
    assert json.loads(first["body"])["client_secret"] == "{{client_secret}}"
    assert json.loads(first["response"])["access_token"] == "{{access_token:1}}"
    assert re.search(r'"authorization": "Bearer \{\{access_token:\d+\}\}"', text)
    assert '"authorization": "Bearer {{redacted}}"' in text  # the bogus tokens sent on purpose


def test_webhook_keys_signatures_and_basic_credentials_are_redacted(tmp_path: Path) -> None:
    config = Config("http://h/api/fin", "http://h/oauth/token", "cli_1", "s3cret-value")
    basic = base64.b64encode(b"cli_1:s3cret-value").decode()
    wrong = base64.b64encode(b"cli_1:guessed-wrong").decode()
    requests = [
        httpx.Request("POST", "http://h/oauth/token", headers={"Authorization": f"Basic {basic}"}),
        httpx.Request("POST", "http://h/oauth/token", headers={"Authorization": f"Basic {wrong}"}),
        httpx.Request(
            "POST",
            "http://h/hooks/x",
            headers={"X-Webhook-Key": "hook-key-123", "X-Fin-Signature": "abcdef0123"},
            json={"webhook_key": "hook-key-123", "body": "hi"},
        ),
    ]
    path = tmp_path / "session.jsonl"
    with path.open("w") as out:
        recorder = Recorder(out, config)
        for request in requests:
            recorder(httpx.Response(200, json={"ok": True}, request=request))
    text = path.read_text()
    for secret in ("s3cret-value", "guessed-wrong", "hook-key-123", "abcdef0123", basic, wrong):
        assert secret not in text
    rows = [json.loads(line) for line in text.splitlines()[1:]]
    assert rows[0]["headers"]["authorization"] == "Basic {{client_id}}:{{client_secret}}"
    assert rows[1]["headers"]["authorization"] == "Basic {{client_id}}:{{redacted}}"
    assert rows[2]["headers"]["x-webhook-key"] == "{{redacted}}"
    assert rows[2]["headers"]["x-fin-signature"] == "{{redacted}}"
    assert json.loads(rows[2]["body"]) == {"webhook_key": "{{redacted}}", "body": "hi"}


def test_replay_refuses_a_file_that_is_not_a_session(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text('{"hello": 1}\n')
    done = findesk("replay", str(path), "--against", "http://127.0.0.1:9/api/fin",
                   "--token-url", "http://127.0.0.1:9/oauth/token",
                   "--client-id", "c", "--client-secret", "s")  # fmt: skip
    assert done.returncode == 2
    assert "not a session written by findesk conformance --record" in done.stderr


def test_a_signed_session_replays_with_its_signing_checks(
    signed: tuple[LiveServer, SigningBreaker], tmp_path: Path
) -> None:
    """findesk with signing on: valid signatures are made again on replay, the wrong, stale
    and replayed ones the checks send on purpose stay wrong, stale and replayed."""
    live, _ = signed
    path = tmp_path / "signed.jsonl"
    client_id, secret = live.new_oauth_client("recorder")
    recorded = findesk(
        "conformance", "--base-url", f"{live.base_url}/api/fin",
        "--token-url", f"{live.base_url}/oauth/token", "--client-id", client_id,
        "--client-secret", secret, "--variant", "rest",
        "--signing-secret", SIGNING_SECRET, "--signature-scheme", "body", "--record", str(path),
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "PASS signing.stale_timestamp" in recorded.stdout
    text = path.read_text()
    assert SIGNING_SECRET not in text and secret not in text
    assert '"x-fin-signature": "{{signature}}"' in text  # signed right: signed again on replay
    assert '"x-fin-signature": "{{redacted}}"' in text  # a wrong one sent on purpose

    signing = ("--signing-secret", SIGNING_SECRET, "--signature-scheme", "body")
    done = replay(live, path, *signing)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 difference(s)")

    unsigned = replay(live, path)  # without the key, every signed call is refused now
    assert unsigned.returncode == 1
    assert "GET /api/fin/agents: status 200, now 401" in unsigned.stdout
