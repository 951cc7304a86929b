"""bench/chat.py at a small size, so that it cannot rot: findesk and the emulator start as a
user starts them, visitors ask, and every question gets Fin's answer in the visitor's stream.
The figures themselves are for the full-size run (see the README)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chat.py"


def test_the_chat_bench_runs_small(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--visitors", "2", "--questions", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert (report["round_trips"], report["unanswered"], report["errors"]) == (6, 0, {})
    assert 0 < report["median_ms"] <= report["p99_ms"]
    assert report["cpu_ms_per_round_trip"]["findesk"] > 0
