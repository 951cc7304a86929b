"""The conformance suite passes against findesk and catches a helpdesk that breaks the contract.

The broken helpdesks are findesk itself behind a small ASGI wrapper that breaks one rule at a time
(findesk's own code is untouched).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import uuid4

import pytest
import support.server
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from support.asgi import read_body, replayed
from support.server import LiveServer

from findesk.conformance.checks import Config
from findesk.conformance.runner import Report, run

# groups: required passed, required failed, recommended passed, recommended failed, verdict
SUMMARY = re.compile(
    r"^required: (\d+) passed, (\d+) failed; recommended: (\d+) passed, (\d+) failed"
    r"(?:; \d+ skipped)? => (PASS|FAIL)",
    re.MULTILINE,
)


def cli(live: LiveServer, variant: str, *extra: str) -> subprocess.CompletedProcess[str]:
    client_id, secret = live.new_oauth_client("conformance")
    return subprocess.run(
        [
            sys.executable, "-m", "findesk", "conformance",
            "--base-url", f"{live.base_url}/api/fin",
            "--token-url", f"{live.base_url}/oauth/token",
            "--client-id", client_id, "--client-secret", secret,
            "--variant", variant, *extra,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


# --- (a) findesk passes every check, in both variants -----------------------------------------


@pytest.mark.parametrize("variant", ["rest", "posts-only"])
def test_findesk_passes_every_check(server: LiveServer, variant: str) -> None:
    """findesk passes both levels: even with --strict nothing fails."""
    done = cli(server, variant, "--fin-agent-id", server.fin_agent_id, "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert not [line for line in lines if line.startswith(("FAIL", "WARN"))]
    assert sum(line.startswith("PASS ") for line in lines) > 60
    summary = SUMMARY.search(done.stdout)
    assert summary is not None, done.stdout
    assert summary.group(2) == "0" and summary.group(4) == "0", summary.group(0)
    assert int(summary.group(3)) >= 10  # findesk's own choices are checked too
    assert summary.group(5) == "PASS"
    assert "PASS messages.order (recommended)" in lines
    assert "PASS conversation.create_concurrent (recommended)" in lines
    assert "PASS auth.bogus_token.create_message" in lines


def test_json_report_and_form_token_requests(server: LiveServer) -> None:
    done = cli(server, "posts-only", "--token-format", "form", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["failed"] == 0 and report["ok"] is True
    # Without --signing-secret only the signing checks are skipped (with that reason).
    skipped = [r for r in report["results"] if r["outcome"] == "skipped"]
    assert {r["name"].split(".")[0] for r in skipped} == {"signing"}
    assert all("needs --signing-secret" in r["reason"] for r in skipped)
    assert report["passed"] + len(skipped) == len(report["results"])
    assert report["levels"]["required"]["failed"] == 0
    assert report["levels"]["recommended"]["passed"] >= 10
    levels = {r["name"]: r["level"] for r in report["results"]}
    assert levels["user.get_unknown"] == "required"
    assert levels["conversation.create_concurrent"] == "recommended"
    names = {r["name"] for r in report["results"]}
    assert {"token.form_body", "envelope.success", "messages.after_id"} <= names
    assert all(r["outcome"] == "passed" for r in report["results"] if r not in skipped)


# --- (b) the suite catches breakage -------------------------------------------------------------


def _edit(body: bytes, change: Callable[[dict[str, Any]], dict[str, Any]]) -> bytes:
    """The JSON object in ``body`` changed; anything else (malformed JSON) as it is."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    return json.dumps(change(payload)).encode() if isinstance(payload, dict) else body


def _walk(data: Any, fix: Callable[[dict[str, Any]], None]) -> Any:
    if isinstance(data, dict):
        for value in data.values():
            _walk(value, fix)
        fix(data)
    elif isinstance(data, list):
        for item in data:
            _walk(item, fix)
    return data


class Breaker:
    """findesk, with the one rule named in ``mode`` broken (none when ``mode`` is None)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mode: str | None = None
        self.valid_token = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.mode is None or "/api/fin" not in scope["path"]:
            await self.app(scope, receive, send)
            return
        operation = scope["path"].rsplit("/", 1)[-1]
        body = await read_body(receive)
        if self.mode == "not_idempotent" and operation in ("user", "create_user"):
            if scope["method"] == "POST":
                body = _edit(body, lambda p: {**p, "object_id": f"{p.get('object_id')}-{uuid4()}"})
        if self.mode == "ignores_token" and operation in ("agents", "get_agents"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            auth = (b"authorization", f"Bearer {self.valid_token}".encode())
            scope = {**scope, "headers": [*headers, auth]}
        if self.mode == "no_after_id" and operation in ("messages", "get_messages"):
            query = parse_qsl(scope["query_string"].decode())
            scope = {**scope, "query_string": urlencode(
                [(k, v) for k, v in query if k != "after_id"]).encode()}  # fmt: skip
            body = _edit(body, lambda p: {k: v for k, v in p.items() if k != "after_id"})
        await self._respond(scope, body, send)

    async def _respond(self, scope: Scope, body: bytes, send: Send) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, replayed(body), capture)
        content = b"".join(chunks)
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        if self.mode == "minimal" and start["status"] == 404 and _about_a_user(scope):
            start["status"] = 422  # an unknown user_id is invalid input here
            content = json.dumps(_walk(json.loads(content), _problem_422)).encode()
        if self.mode == "no_www_authenticate":
            headers = [(k, v) for k, v in headers if k != b"www-authenticate"]
        if self.mode in RESPONSE_REWRITES and content:
            content = json.dumps(_walk(json.loads(content), RESPONSE_REWRITES[self.mode])).encode()
        headers.append((b"content-length", str(len(content)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _rename_title(obj: dict[str, Any]) -> None:
    if "status" in obj and "title" in obj and "user" in obj:
        obj["subject"] = obj.pop("title")


def _status_outside_enum(obj: dict[str, Any]) -> None:
    if obj.get("status") == "open" and "user" in obj:
        obj["status"] = "pending"


def _minimal_author(obj: dict[str, Any]) -> None:
    """Message authors with only what the contract requires: id and user_type."""
    author = obj.get("author")
    if "message_type" in obj and isinstance(author, dict):
        obj["author"] = {"id": author["id"], "user_type": author["user_type"]}


def _problem_422(obj: dict[str, Any]) -> None:
    if obj.get("status") == 404 and "title" in obj:
        obj["status"] = 422


def _about_a_user(scope: Scope) -> bool:
    operation = scope["path"].rsplit("/", 1)[-1]
    creates_conversation = operation == "create_conversation" or (
        operation == "conversation" and scope["method"] == "POST"
    )
    return operation in ("user", "get_user", "update_user") or creates_conversation


RESPONSE_REWRITES: dict[str, Callable[[dict[str, Any]], None]] = {
    "renamed_field": _rename_title,
    "status_outside_enum": _status_outside_enum,
    "minimal": _minimal_author,
}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def broken(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Breaker]]:
    breakers: list[Breaker] = []
    real_create_app = support.server.create_app

    def create_broken_app(*args: Any) -> Breaker:
        breakers.append(Breaker(real_create_app(*args)))
        return breakers[-1]

    url = support.server.database_url(request.param, request, tmp_path_factory.mktemp("broken"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(support.server, "create_app", create_broken_app)
        live = LiveServer(url).start()
    breakers[0].valid_token = live.fin_token()
    yield live, breakers[0]
    live.stop()


def run_broken(
    broken: tuple[LiveServer, Breaker], mode: str | None, variant: str, strict: bool = False
) -> Report:
    live, breaker = broken
    breaker.mode = mode
    client_id, secret = live.new_oauth_client()
    config = Config(
        base_url=f"{live.base_url}/api/fin",
        token_url=f"{live.base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
        variant="rest" if variant == "rest" else "posts-only",
    )
    try:
        return run(config, strict=strict)
    finally:
        breaker.mode = None


def test_the_wrapper_alone_breaks_nothing(broken: tuple[LiveServer, Breaker]) -> None:
    report = run_broken(broken, "passthrough", "rest")
    assert report.ok, report.failures()


# mode -> ({check that must fail: a reason it must give}, checks that must still pass); a name
# ending in ".recommended" is the recommended-level finding of a required check.
BREAKAGES: dict[str, tuple[dict[str, str], set[str]]] = {
    "not_idempotent": (
        {
            "user.create_repeat": "the repeat made another object",
            "user.create_repeat.recommended": "repeat: expected 200, got 201",
            "user.create_concurrent": "expected one 201, got 10",
        },
        {"user.create", "conversation.create_repeat", "message.create_repeat"},
    ),
    "ignores_token": (
        {
            "auth.no_token.get_agents": "expected 401, got 200",
            "auth.bogus_token.get_agents": "expected 401, got 200",
        },
        {"auth.no_token.get_user", "auth.bogus_token.create_message", "agents.list"},
    ),
    "no_www_authenticate": (
        {
            "auth.no_token.get_user.recommended": "must carry WWW-Authenticate: Bearer",
            "auth.bogus_token.update_conversation.recommended": "WWW-Authenticate: Bearer",
        },
        {"token.bad_secret", "user.get", "auth.no_token.get_user"},
    ),
    "renamed_field": (
        {
            "conversation.create.recommended": "conversation.title is missing",
            "conversation.get.recommended": "conversation.title is missing",
            "conversation.partial_update": "conversation.title is missing",
        },
        {"user.create", "message.create", "messages.after_id", "conversation.get"},
    ),
    "status_outside_enum": (
        {
            "conversation.get": "conversation.status must be one of",
            "conversation.create": "conversation.status must be one of",
        },
        {"user.create", "messages.order"},
    ),
    "no_after_id": (
        {"messages.after_id.recommended": "expected only"},
        # after_id is only an optimisation: returning every message meets the contract
        {"messages.after_id", "messages.after_id_unknown", "messages.order"},
    ),
}


@pytest.mark.parametrize("variant", ["rest", "posts-only"])
@pytest.mark.parametrize("mode", sorted(BREAKAGES))
def test_the_suite_reports_each_breakage(
    broken: tuple[LiveServer, Breaker], mode: str, variant: str
) -> None:
    must_fail, must_pass = BREAKAGES[mode]
    report = run_broken(broken, mode, variant)
    failures = report.failures()
    assert set(must_fail) <= set(failures), sorted(failures)
    for name, reason in must_fail.items():
        assert reason in failures[name].reason, (name, failures[name].reason)
        level = report.result(name).level
        recommended = name.endswith(".recommended") or name in RECOMMENDED_CHECKS
        assert level == ("recommended" if recommended else "required"), (name, level)
        exchange = failures[name].request
        assert exchange is not None and exchange.url.startswith(broken[0].base_url)
    for name in must_pass:
        assert report.result(name).outcome == "passed", report.result(name)


RECOMMENDED_CHECKS = {"user.create_concurrent", "conversation.partial_update"}


def test_cli_exits_non_zero_and_reports_the_failure(broken: tuple[LiveServer, Breaker]) -> None:
    live, breaker = broken
    breaker.mode = "status_outside_enum"
    try:
        done = cli(live, "rest")
    finally:
        breaker.mode = None
    assert done.returncode == 1, done.stdout
    fail_line = next(line for line in done.stdout.splitlines() if line.startswith("FAIL"))
    assert fail_line.startswith("FAIL conversation.create: conversation.status must be one of")
    assert "POST " in done.stdout
    assert "Required by the contract: " in done.stdout
    summary = SUMMARY.search(done.stdout)
    assert summary is not None and int(summary.group(2)) >= 1
    assert summary.group(5) == "FAIL"


def test_a_recommended_failure_warns_and_fails_only_with_strict(
    broken: tuple[LiveServer, Breaker],
) -> None:
    """A helpdesk that ignores after_id (allowed: it is only an optimisation) passes the run,
    with a warning; --strict turns the warning into a failing run."""
    live, breaker = broken
    breaker.mode = "no_after_id"
    try:
        lenient = cli(live, "rest")
        strict = cli(live, "rest", "--strict")
    finally:
        breaker.mode = None
    assert lenient.returncode == 0, lenient.stdout
    warn = next(line for line in lenient.stdout.splitlines() if line.startswith("WARN"))
    assert warn.startswith("WARN messages.after_id.recommended (recommended): expected only")
    assert "GET " in lenient.stdout and "after_id=" in lenient.stdout
    assert not [line for line in lenient.stdout.splitlines() if line.startswith("FAIL")]
    assert "PASS messages.after_id\n" in lenient.stdout
    summary = SUMMARY.search(lenient.stdout)
    assert summary is not None and summary.group(2) == "0" and int(summary.group(4)) >= 1
    assert summary.group(5) == "PASS"
    assert "Recommended (findesk's stronger choices): " in lenient.stdout
    assert "messages.after_id.recommended" in lenient.stdout.split("Recommended (", 1)[1]

    assert strict.returncode == 1, strict.stdout
    assert "FAIL messages.after_id.recommended (recommended): expected only" in strict.stdout
    summary = SUMMARY.search(strict.stdout)
    assert summary is not None and summary.group(5) == "FAIL"


@pytest.mark.parametrize("variant", ["rest", "posts-only"])
def test_a_minimal_but_valid_helpdesk_passes_the_required_level(
    broken: tuple[LiveServer, Breaker], variant: str
) -> None:
    """Message authors with only id and user_type, and an unknown user answered 422: all the
    contract asks. No required check fails; findesk's stronger choices are reported apart."""
    report = run_broken(broken, "minimal", variant)
    assert report.failures("required") == {}, report.failures("required")
    assert report.ok
    recommended = report.failures("recommended")
    assert "author.name is missing" in recommended["message.create.recommended"].reason
    assert "expected 404, got 422" in recommended["user.get_unknown.recommended"].reason
    assert (
        "expected 404, got 422"
        in recommended["conversation.create_unknown_user.recommended"].reason
    )
    for name in ("message.create", "user.get_unknown", "conversation.create_unknown_user"):
        assert report.result(name).outcome == "passed", report.result(name)
    assert "recommended: " in report.summary() and report.summary().endswith("=> PASS")

    strict = run_broken(broken, "minimal", variant, strict=True)
    assert not strict.ok
    assert strict.failures("required") == {}
