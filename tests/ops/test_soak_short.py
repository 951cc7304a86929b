"""bench/soak.py, run for about twenty seconds so that it cannot rot: three app processes and
two workers on PostgreSQL, driven through the Fin emulator, lose nothing and log no error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.postgres import available

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"

pytestmark = pytest.mark.postgres


def test_a_short_soak_passes() -> None:
    ok, reason = available()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is not available: {reason}", pytrace=False)
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    result = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "0.35", "--probe-every", "7", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["errors"]["total"] == 0
    conversations = report["conversations"]
    assert conversations["started"] == conversations["completed"] >= 15
    assert conversations["agent_replies"] == conversations["handed_over"] > 0
    assert report["notifications"]["lost"] == 0
    assert report["notifications"]["outbox"].get("delivered", 0) > 0
    live = report["live"]
    assert live["missing"] == 0 and live["received"] == live["changes"] > 0
    assert live["across_processes"]["count"] > 0
    assert all(calls > 0 for calls in report["fin_calls_per_app"])  # Fin used every process
    assert report["typing"]["sent"] == conversations["handed_over"]
    assert report["sign_in"]["probes"] >= 2 and report["sign_in"]["not_shared"] == 0
