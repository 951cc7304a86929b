"""`findesk demo` (what `make run` starts: findesk and the Fin emulator, two real processes
wired together) for end-to-end tests, and signing in to its inbox."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from support.server import free_port


@contextmanager
def running_demo(
    data_dir: Path, settings: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """The demo's `--json` description (URLs, credentials, ``data_dir``) while it runs; stops it
    with Ctrl-C, which must end it cleanly, and fails if either process logged a crash.
    ``settings``: ``FINDESK_`` variables for it (``{"SMTP_HOST": …}``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env |= {f"FINDESK_{name}": value for name, value in (settings or {}).items()}
    env["FINDESK_DATA_DIR"] = str(data_dir)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "findesk",
            "demo",
            "--json",
            "--port",
            str(free_port()),
            "--emulator-port",
            str(free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        first = lines.get(timeout=120)
    except queue.Empty:
        process.kill()
        pytest.fail("findesk demo printed nothing in 120 s")
    if not first:
        process.wait()
        assert process.stderr is not None
        pytest.fail(f"findesk demo failed: {process.stderr.read()}")
    info = json.loads(first)
    info["data_dir"] = str(data_dir)
    yield info
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0, "Ctrl-C should stop the demo cleanly"
    logs = Path(info["logs"])
    for name in ("findesk", "emulator"):
        assert "Traceback" not in (logs / f"{name}.log").read_text(), f"{name} logged a crash"


def sign_in(page: Page, demo: dict[str, Any]) -> None:
    page.goto(demo["inbox_url"].removesuffix("/inbox") + "/login")
    page.get_by_label("Email").fill(demo["agent_email"])
    page.get_by_label("Password").fill(demo["agent_password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))
