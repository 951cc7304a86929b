"""The README's "Test your own helpdesk", followed as written: its shell blocks run in a shell, in
a fresh folder, against a running findesk set up as the section asks (signing on, its Fin webhook
pointed at the suite's listener), with only the example values replaced by real ones."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import LiveServer, free_port

README = Path(__file__).parents[2] / "README.md"
SIGNING_SECRET = "readme-signing-secret-0123456789"
WEBHOOK_KEY = "readme-webhook-key"


def section_blocks() -> list[str]:
    section = README.read_text().split("\n## Test your own helpdesk\n", 1)[1].split("\n## ", 1)[0]
    return [part.removeprefix("sh\n") for part in section.split("```")[1::2]]


@pytest.fixture
def helpdesk(tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    port = free_port()
    live = LiveServer(
        f"sqlite:///{tmp_path / 'findesk.db'}",
        {
            "fin_signing_secret": SIGNING_SECRET,
            "fin_signature_scheme": "body",
            "fin_webhook_url": f"http://127.0.0.1:{port}"
            "/hooks/standalone/custom_helpdesk_conversation_event/conformance",
            "fin_webhook_key": WEBHOOK_KEY,
            # The helpdesk's own delivery timing, quick so the run is short.
            "notifier_poll_seconds": 0.1,
            "notifier_timeout_seconds": 1.5,
            "notifier_backoff_base_seconds": 1.0,
        },
    ).start()
    yield live, port
    live.stop()


def test_the_readme_test_your_own_helpdesk_section_works_as_written(
    helpdesk: tuple[LiveServer, int], tmp_path: Path
) -> None:
    live, port = helpdesk
    script, run = section_blocks()
    lines = run.replace("\\\n", " ").splitlines()
    assert lines[0] == "make install"  # done: this test runs in that environment
    client_id, secret = live.new_oauth_client("own helpdesk")
    agent = live.agent_http("readme-agent@example.com", "Rita Readme")
    token = agent.headers["Authorization"].removeprefix("Bearer ")
    examples = {
        "https://helpdesk.example.com": live.base_url,
        "the client id": client_id,
        "the client secret": secret,
        "the signing secret": SIGNING_SECRET,
        "the webhook key": WEBHOOK_KEY,
        "an agent's token": token,
        "127.0.0.1:8099": f"127.0.0.1:{port}",
        ".venv/bin/findesk ": f"{sys.executable} -m findesk ",
    }
    commands = "\n".join([script, *lines[1:]])
    for example, real in examples.items():
        assert example in commands, example
        commands = commands.replace(example, real)
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["bash", "-euc", commands], cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].endswith("=> PASS"), done.stdout
    assert "Your turn" not in done.stdout + done.stderr  # the script acted, nobody was asked

    # Both directions were checked, signing included, and nothing was skipped for want of it.
    root = ET.parse(work / "conformance.xml").getroot()
    assert root.get("failures") == "0", done.stdout
    outcomes: dict[str, str] = {}
    for case in root.iter("testcase"):
        outcome = "skipped" if case.find("skipped") is not None else "passed"
        if case.find("failure") is not None:
            outcome = "failed"
        outcomes.setdefault(case.get("name", ""), outcome)
    for name in (
        "signing.unsigned",
        "signing.stale_timestamp",
        "webhook.notified",
        "reply.visible",
        "webhook.retry_5xx",
        "webhook.retry_timeout",
        "webhook.key",
        "webhook.typing",
        "webhook.coalesced",
        "ownership.race",
    ):
        assert outcomes.get(name) == "passed", (name, outcomes.get(name), done.stdout)
    suites = {suite.get("name", "") for suite in root.iter("testsuite")}
    assert any("posts-only" in name for name in suites) and any("rest" in name for name in suites)
    html = (work / "conformance.html").read_text()
    assert '<span class="verdict PASS">PASS</span>' in html
    assert "webhook.retry_5xx" in html
