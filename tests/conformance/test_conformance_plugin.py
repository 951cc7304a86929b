"""The pytest plugin, as an integrator uses it: a project of its own (conftest.py with the
plugin, pytest.ini with the settings, the secret in the environment) run by pytest in a
subprocess against findesk, and against findesk with one rule broken."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support.server import LiveServer
from test_conformance import Breaker
from test_conformance import broken as broken  # the fixture: findesk behind a Breaker

CONFTEST = 'pytest_plugins = ["findesk.conformance.pytest_plugin"]\n'
OWN_TEST = "def test_my_own_code():\n    assert 1 + 1 == 2\n"


def project(tmp_path: Path, live: LiveServer | None, *ini: str) -> Path:
    """An integrator's project: their conftest.py, pytest.ini and one test of their own."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_mine.py").write_text(OWN_TEST)
    settings = list(ini)
    if live is not None:
        settings[:0] = [
            f"conformance_base_url = {live.base_url}/api/fin",
            f"conformance_token_url = {live.base_url}/oauth/token",
        ]
    (tmp_path / "pytest.ini").write_text("[pytest]\n" + "\n".join(settings) + "\n")
    return tmp_path


def pytest_in(
    where: Path, live: LiveServer | None, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, ET.Element]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_CONFORMANCE_")}
    if live is not None:
        client_id, secret = live.new_oauth_client("ci")
        env |= {"FINDESK_CONFORMANCE_CLIENT_ID": client_id,
                "FINDESK_CONFORMANCE_CLIENT_SECRET": secret}  # fmt: skip
    junit = where / "junit.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
         f"--junitxml={junit}", *args],
        cwd=where, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    cases = {}
    if junit.exists():
        cases = {c.get("name", ""): c for c in ET.parse(junit).getroot().iter("testcase")}
    return done, cases


def outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def test_without_settings_the_plugin_adds_nothing(tmp_path: Path) -> None:
    done, cases = pytest_in(project(tmp_path, None), None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(cases) == {"test_my_own_code"}
    assert "1 passed" in done.stdout and "conformance" not in done.stdout


def test_every_check_is_a_test_item_and_findesk_passes(server: LiveServer, tmp_path: Path) -> None:
    where = project(tmp_path, server, "conformance_variant = rest posts-only")
    done, cases = pytest_in(where, server)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert outcome(cases["test_my_own_code"]) == "passed"
    for name in ("token.bad_secret", "user.create", "messages.after_id"):
        assert outcome(cases[f"{name}[rest]"]) == "passed"
        assert outcome(cases[f"{name}[posts-only]"]) == "passed"
    assert outcome(cases["envelope.success[posts-only]"]) == "passed"
    assert "envelope.success[rest]" not in cases  # the other variant's check is no item here
    assert "PASSED conformance::user.create[rest]" in done.stdout
    assert "findesk conformance (rest): required: " in done.stdout
    assert "findesk conformance (posts-only): required: " in done.stdout
    assert "=> FAIL" not in done.stdout


def test_a_required_failure_fails_its_item(
    broken: tuple[LiveServer, Breaker], tmp_path: Path
) -> None:
    live, breaker = broken
    where = project(tmp_path, live)
    breaker.mode = "status_outside_enum"
    try:
        done, cases = pytest_in(where, live, "-k", "conversation or mine")
    finally:
        breaker.mode = None
    assert done.returncode == 1, done.stdout[-3000:]
    assert outcome(cases["conversation.create[rest]"]) == "failure"
    assert outcome(cases["conversation.get[rest]"]) == "failure"
    assert outcome(cases["test_my_own_code"]) == "passed"
    assert "user.create[rest]" not in cases  # -k selects checks like any test
    failure = cases["conversation.create[rest]"].find("failure")
    assert failure is not None
    text = (failure.get("message") or "") + (failure.text or "")
    assert "conversation.status must be one of" in text
    assert f"POST {live.base_url}/api/fin/conversation" in text
    assert "FAILED conformance::conversation.create[rest]" in done.stdout


def test_a_recommended_failure_warns_unless_strict(
    broken: tuple[LiveServer, Breaker], tmp_path: Path
) -> None:
    live, breaker = broken
    where = project(tmp_path, live)
    breaker.mode = "no_after_id"
    try:
        lenient, lenient_cases = pytest_in(where, live, "-k", "after_id")
        strict, strict_cases = pytest_in(where, live, "-k", "after_id", "--conformance-strict")
    finally:
        breaker.mode = None
    assert lenient.returncode == 0, lenient.stdout[-3000:]
    assert outcome(lenient_cases["messages.after_id[rest]"]) == "passed"
    assert "ConformanceWarning: messages.after_id.recommended (recommended, rest)" in (
        lenient.stdout
    )
    assert "expected only" in lenient.stdout

    assert strict.returncode == 1, strict.stdout[-3000:]
    assert outcome(strict_cases["messages.after_id[rest]"]) == "failure"
    assert outcome(strict_cases["messages.after_id_unknown[rest]"]) == "passed"
    assert "FAILED conformance::messages.after_id[rest]" in strict.stdout


def test_incomplete_settings_are_a_usage_error(tmp_path: Path) -> None:
    where = project(tmp_path, None, "conformance_base_url = http://127.0.0.1:9/api/fin")
    done, _ = pytest_in(where, None)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "needs conformance_token_url, conformance_client_id, conformance_client_secret" in (
        done.stderr
    )
