"""One conformance run covers everything: signed calls, every token format, both variants and
bad input on every operation; each broken helpdesk fails as what it is.

The helpdesk is findesk with a signing secret, behind an ASGI wrapper (:class:`SigningBreaker`)
that breaks one rule at a time; findesk's own code is untouched.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import support.server
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from support.asgi import read_body, replayed
from support.server import LiveServer

from findesk.conformance.checks import TIMESTAMP, Config
from findesk.conformance.runner import Report, run
from findesk.conformance.signer import SuiteSigner
from findesk.fin_api.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureScheme,
    matching_digest,
    signature_headers,
    signed_string,
)

SECRET = "conformance-signing-secret-0123456789"
SUMMARY = re.compile(
    r"^required: (\d+) passed, (\d+) failed; recommended: (\d+) passed, (\d+) failed"
    r"(?:; \d+ skipped)? => (PASS|FAIL)",
    re.MULTILINE,
)
SIGNING = ("signing.unsigned", "signing.bad_signature", "signing.stale_timestamp")
INPUT = (
    "input.get_user", "input.update_user", "input.create_user", "input.get_agents",
    "input.get_conversation", "input.update_conversation", "input.last_user_read_at",
    "input.create_conversation", "input.get_messages", "input.create_message",
)  # fmt: skip
BOTH = ("rest", "posts-only")


# --- the wrapper ------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode() for k, v in scope["headers"] if k == name), "")


class SigningBreaker:
    """findesk with a signing secret, with the one rule named in ``mode`` broken:

    ``ignores_signature``: any signature (or none) is accepted (the wrapper signs every call
    afresh); ``replayable``: a valid signature is accepted again; ``lenient_read_at``: a malformed
    ``last_user_read_at`` is ignored instead of refused; ``refuses_but_applies``: an unknown
    status is refused, but the conversation is resolved all the same; ``no_basic``: the token
    endpoint refuses client credentials in HTTP Basic; ``rest_only``: the posts-only paths are
    not served."""

    def __init__(self, app: ASGIApp, scheme: SignatureScheme) -> None:
        self.app = app
        self.scheme: SignatureScheme = scheme
        self.mode: str | None = None
        self.seen: set[str] = set()
        self.used: set[bytes] = set()  # what the wrapper signed: never the same twice

    def _message(self, scope: Scope, body: bytes, stamp: str) -> bytes:
        query = scope["query_string"].decode()
        return signed_string(self.scheme, stamp, scope["method"], scope["path"], query, body)

    def _resign(self, scope: Scope, body: bytes) -> Scope:
        """The call signed validly, with a signature findesk has not seen: in a second already
        past, which the suite's own signer (now or later) never uses again."""
        now = int(time.time())
        stamp = next(s for s in range(now - 1, now - 200, -1) if self._message(scope, body, str(s))
                     not in self.used)  # fmt: skip
        self.used.add(self._message(scope, body, str(stamp)))
        url = f"http://helpdesk{scope['path']}?{scope['query_string'].decode()}"
        fresh = signature_headers(SECRET, scope["method"], url, body, scheme=self.scheme,
                                  timestamp=stamp)  # fmt: skip
        names = {TIMESTAMP_HEADER.lower().encode(), SIGNATURE_HEADER.lower().encode()}
        headers = [(k, v) for k, v in scope["headers"] if k not in names]
        headers += [(k.lower().encode(), v.encode()) for k, v in fresh.items()]
        return {**scope, "headers": headers}

    def _valid(self, scope: Scope, body: bytes) -> bool:
        """Whether the call is signed validly (whatever its timestamp); its signature counts as
        seen, so that ``_resign`` never makes it again."""
        stamp = _header(scope, b"x-fin-request-timestamp")
        signature = _header(scope, b"x-fin-signature")
        message = self._message(scope, body, stamp)
        self.used.add(message)
        return bool(stamp and signature) and matching_digest(SECRET, message, signature) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        path = scope["path"]
        if "/api/fin" in path:  # a signature findesk has seen is one _resign never makes again
            self._valid(scope, body)
        if self.mode is None:
            await self.app(scope, replayed(body), send)
            return
        if self.mode == "no_basic" and path.endswith("/oauth/token"):
            if _header(scope, b"authorization").lower().startswith("basic"):
                await _answer(send, 401, {"error": "invalid_client"})
                return
        if "/api/fin" not in path:
            await self.app(scope, replayed(body), send)
            return
        operation = path.rsplit("/", 1)[-1]
        if self.mode == "rest_only" and "_" in operation:  # get_user, create_message…
            await _answer(send, 404, {"title": "Not Found", "status": 404})
            return
        updates = operation == "update_conversation" or (
            operation == "conversation" and scope["method"] == "PUT"
        )
        if self.mode == "ignores_signature":
            scope = self._resign(scope, body)
        if self.mode == "replayable":
            signature = _header(scope, b"x-fin-signature")
            if signature in self.seen and self._valid(scope, body):
                scope = self._resign(scope, body)
            self.seen.add(signature)
        if self.mode == "lenient_read_at" and updates and self._valid(scope, body):
            payload = json.loads(body)
            stamp = payload.get("last_user_read_at")
            if stamp is not None and not (isinstance(stamp, str) and TIMESTAMP.match(stamp)):
                del payload["last_user_read_at"]
                body = json.dumps(payload).encode()
                scope = self._resign(scope, body)
        if self.mode == "refuses_but_applies" and updates and self._valid(scope, body):
            payload = json.loads(body)
            if payload.get("status") not in (None, "open", "resolved", "closed", "ended"):
                body = json.dumps({**payload, "status": "resolved"}).encode()
                await self.app(self._resign(scope, body), replayed(body), _discard)
                await _answer(send, 422, {"title": "Invalid status", "status": 422})
                return
        await self.app(scope, replayed(body), send)


async def _discard(message: Message) -> None:
    return None


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    content = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def start_signed(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    scheme: SignatureScheme,
) -> tuple[LiveServer, SigningBreaker]:
    breakers: list[SigningBreaker] = []
    real_create_app = support.server.create_app

    def create_wrapped_app(*args: Any) -> SigningBreaker:
        breakers.append(SigningBreaker(real_create_app(*args), scheme))
        return breakers[-1]

    url = support.server.database_url(backend, request, tmp_path_factory.mktemp("signed"))
    overrides = {"fin_signing_secret": SECRET, "fin_signature_scheme": scheme}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(support.server, "create_app", create_wrapped_app)
        live = LiveServer(url, overrides).start()
    return live, breakers[0]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def signed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, SigningBreaker]]:
    """findesk with a signing secret in the scheme spec 5 says Fin uses (body)."""
    live, breaker = start_signed(request.param, request, tmp_path_factory, "body")
    yield live, breaker
    live.stop()


def run_signed(
    signed: tuple[LiveServer, SigningBreaker],
    mode: str | None,
    *,
    secret: str | None = SECRET,
    strict: bool = False,
    **options: Any,
) -> Report:
    live, breaker = signed
    breaker.mode = mode
    client_id, client_secret = live.new_oauth_client()
    config = Config(
        base_url=f"{live.base_url}/api/fin",
        token_url=f"{live.base_url}/oauth/token",
        client_id=client_id,
        client_secret=client_secret,
        signing_secret=secret,
        signature_scheme=breaker.scheme,
        **options,
    )
    try:
        return run(config, strict=strict, variants=BOTH)
    finally:
        breaker.mode = None


def outcomes(report: Report, name: str) -> dict[str, str]:
    return {v: report.result(name, v).outcome for v in BOTH}


# --- findesk passes, signed, in both variants, in one run --------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("scheme", ["body", "bound"])
def test_findesk_with_signing_passes_every_check_in_both_variants(
    backend: str,
    scheme: SignatureScheme,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    live, breaker = start_signed(backend, request, tmp_path_factory, scheme)
    try:
        report = run_signed((live, breaker), "passthrough", strict=True)
    finally:
        live.stop()
    assert report.ok, report.failures()
    assert report.variants == list(BOTH) and report.variant == "both"
    for name in (*SIGNING, "signing.replayed_write", "signing.repeated_read", *INPUT):
        if name != "input.get_agents":
            assert outcomes(report, name) == {"rest": "passed", "posts-only": "passed"}, name
    # GET /agents takes no input: only the posts-only body can be bad
    assert outcomes(report, "input.get_agents") == {"rest": "skipped", "posts-only": "passed"}
    for name in ("token.json_body", "token.form_body", "token.json_basic", "token.form_basic"):
        assert outcomes(report, name) == {"rest": "passed", "posts-only": "passed"}, name
    assert report.result("envelope.success", "posts-only").outcome == "passed"
    assert report.result("envelope.success", "rest").outcome == "skipped"
    for variant in BOTH:
        assert report.count("passed", "required", variant) > 60
        assert report.summary(variant).endswith("=> PASS (strict)")
    assert report.result("signing.replayed_write").level == "recommended"
    assert report.result("signing.unsigned").level == "required"


def test_the_wrapper_alone_breaks_nothing(signed: tuple[LiveServer, SigningBreaker]) -> None:
    report = run_signed(signed, "passthrough")
    assert report.ok and report.failures() == {}, report.failures()


def test_without_a_signing_secret_the_signing_checks_are_skipped(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    report = run_signed(signed, "ignores_signature", secret=None)
    for name in (*SIGNING, "signing.replayed_write"):
        for variant in BOTH:
            result = report.result(name, variant)
            assert result.outcome == "skipped", result
            assert "needs --signing-secret" in result.reason
    assert report.ok, report.failures()


# --- broken helpdesks, each failing as what it is -----------------------------------------------


def test_a_helpdesk_that_ignores_signatures_fails_the_signing_checks(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    report = run_signed(signed, "ignores_signature")
    assert not report.ok
    for variant in BOTH:
        failures = report.failures("required", variant)
        assert {f"{name} [{variant}]" for name in SIGNING} == set(failures), sorted(failures)
        unsigned = failures[f"signing.unsigned [{variant}]"]
        assert "a read without a signature: expected 401, got 200" in unsigned.reason
        assert "with a wrong signature: expected 401, got 200" in (
            failures[f"signing.bad_signature [{variant}]"].reason
        )
        assert "s ago: expected 401, got 200" in (
            failures[f"signing.stale_timestamp [{variant}]"].reason
        )
        assert unsigned.request is not None and unsigned.request.status == 200
        for name in ("user.create", "message.create", "input.update_conversation"):
            assert report.result(name, variant).outcome == "passed", name


def test_a_replayable_signature_fails_the_replay_check_only(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    report = run_signed(signed, "replayable")
    assert report.ok, report.failures("required")  # the contract is silent on replays
    assert set(report.failures()) == {f"signing.replayed_write [{v}]" for v in BOTH}
    for variant in BOTH:
        failure = report.result("signing.replayed_write", variant)
        assert failure.level == "recommended"
        assert "the same signature again: expected it refused (401), got 200" in failure.reason
        assert report.result("signing.repeated_read", variant).outcome == "passed"
        assert report.result("signing.unsigned", variant).outcome == "passed"
    strict = run_signed(signed, "replayable", strict=True)
    assert not strict.ok


def test_a_helpdesk_accepting_bad_input_on_one_operation_fails_there(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    report = run_signed(signed, "lenient_read_at")
    for variant in BOTH:
        failures = report.failures("required", variant)
        assert set(failures) == {
            f"input.update_conversation [{variant}]",
            f"input.last_user_read_at [{variant}]",
        }, sorted(failures)
        read_at = failures[f"input.last_user_read_at [{variant}]"].reason
        assert "last_user_read_at 'yesterday': expected a 4xx (not 401/403), got 200" in read_at
        assert "last_user_read_at not a time: expected a 4xx" in (
            failures[f"input.update_conversation [{variant}]"].reason
        )
        for name in INPUT:
            if name not in ("input.update_conversation", "input.last_user_read_at"):
                assert report.result(name, variant).outcome in ("passed", "skipped"), name
        assert report.count("passed", variant=variant) > 60


def test_a_refused_write_that_changes_the_object_fails(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    """The answer alone looks right (422); the re-read shows the conversation was resolved."""
    report = run_signed(signed, "refuses_but_applies")
    for variant in BOTH:
        failures = report.failures("required", variant)
        update = failures[f"input.update_conversation [{variant}]"]
        assert "status outside the enum: refused, but the object changed" in update.reason
        assert update.request is not None and '"status":"resolved"' in update.request.response


def test_token_formats_basic_refused_fails_at_the_configured_level(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    lenient = run_signed(signed, "no_basic")
    assert lenient.ok
    assert set(lenient.failures()) == {
        f"token.{fmt}_basic [{v}]" for fmt in ("json", "form") for v in BOTH
    }
    assert lenient.result("token.form_basic").level == "recommended"

    basic = run_signed(signed, "no_basic", token_auth="basic", token_format="form")
    assert not basic.ok
    required = basic.failures("required")
    assert "token.form_basic [rest]" in required and "token.json_basic [rest]" not in required
    assert "expected 200, got 401" in required["token.form_basic [rest]"].reason
    assert basic.result("token.form_body").level == "recommended"


def test_two_runs_in_one_second_never_send_the_same_signature(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One run's last call and the next run's first may carry the same body in the same second
    (the body scheme signs no path): the next run's signer must not repeat the signature, which
    a helpdesk refusing replays refuses (findesk answered 401 where the check expected 422)."""
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.25)
    signatures = {
        SuiteSigner(SECRET, "body")
        .sign(httpx.Request("POST", "http://helpdesk/api/fin/user", json={"name": "No Id"}))
        .headers[SIGNATURE_HEADER]
        for _ in range(3)
    }
    assert len(signatures) == 3


# --- the command line ---------------------------------------------------------------------------


def cli(live: LiveServer, *extra: str) -> subprocess.CompletedProcess[str]:
    client_id, secret = live.new_oauth_client("conformance")
    return subprocess.run(
        [
            sys.executable, "-m", "findesk", "conformance",
            "--base-url", f"{live.base_url}/api/fin",
            "--token-url", f"{live.base_url}/oauth/token",
            "--client-id", client_id, "--client-secret", secret, *extra,
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_cli_runs_both_variants_signed_in_one_report(
    signed: tuple[LiveServer, SigningBreaker],
) -> None:
    live, breaker = signed
    done = cli(live, "--signing-secret", SECRET, "--strict")  # --variant auto
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Variants served: rest, posts-only"
    assert "PASS signing.unsigned [rest]" in lines
    assert "PASS signing.unsigned [posts-only]" in lines
    assert "PASS signing.replayed_write [posts-only] (recommended)" in lines
    assert "PASS input.last_user_read_at [rest]" in lines
    assert "SKIP envelope.success [rest]: only for the posts-only variant" in lines
    assert re.search(r"^rest: required: \d+ passed, 0 failed; .* => PASS", done.stdout, re.M)
    assert re.search(r"^posts-only: required: \d+ passed, 0 failed; .*=> PASS", done.stdout, re.M)
    summary = SUMMARY.search(done.stdout)
    assert summary is not None and summary.group(5) == "PASS", done.stdout

    as_json = cli(live, "--signing-secret", SECRET, "--variant", "both", "--json")
    report = json.loads(as_json.stdout)
    assert report["variants"] == ["rest", "posts-only"] and report["ok"] is True
    assert report["by_variant"]["posts-only"]["failed"] == 0
    assert {r["variant"] for r in report["results"]} == {"rest", "posts-only"}

    breaker.mode = "ignores_signature"
    try:
        broken = cli(live, "--signing-secret", SECRET, "--variant", "both")
        single = cli(live, "--signing-secret", SECRET, "--variant", "posts-only")
        unsigned = cli(live, "--variant", "rest")
    finally:
        breaker.mode = None
    assert broken.returncode == 1, broken.stdout
    fails = [line for line in broken.stdout.splitlines() if line.startswith("FAIL")]
    assert any(line.startswith("FAIL signing.unsigned [rest]: a read") for line in fails)
    assert any(line.startswith("FAIL signing.unsigned [posts-only]: a read") for line in fails)
    assert re.search(r"^rest: required: \d+ passed, 3 failed; .* => FAIL", broken.stdout, re.M)
    assert "signing.stale_timestamp [posts-only]" in broken.stdout.split("Required by")[1]

    assert single.returncode == 1, single.stdout
    assert "FAIL signing.bad_signature: a read with a wrong signature" in single.stdout
    assert "[rest]" not in single.stdout and "[posts-only]" not in single.stdout

    assert unsigned.returncode == 0, unsigned.stdout
    assert "SKIP signing.unsigned: needs --signing-secret" in unsigned.stdout


def test_cli_auto_runs_the_one_variant_served(signed: tuple[LiveServer, SigningBreaker]) -> None:
    live, breaker = signed
    breaker.mode = "rest_only"
    try:
        done = cli(live, "--signing-secret", SECRET)
    finally:
        breaker.mode = None
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Variants served: rest"
    assert "PASS signing.unsigned" in lines and "[rest]" not in done.stdout
    assert "SKIP envelope.success: only for the posts-only variant" in lines
    assert not re.search(r"^rest: ", done.stdout, re.MULTILINE)


def test_cli_refuses_unknown_option_values(signed: tuple[LiveServer, SigningBreaker]) -> None:
    live, _ = signed
    for option, value in (
        ("--variant", "soap"), ("--token-auth", "header"), ("--signature-scheme", "sha1"),
    ):  # fmt: skip
        done = cli(live, option, value)
        assert done.returncode != 0 and option in done.stdout + done.stderr, (option, done)
