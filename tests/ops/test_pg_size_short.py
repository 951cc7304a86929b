"""bench/pg_size.py at a small size, so that it cannot rot: it seeds with COPY, serves, drives
every Fin scenario through wrk, times the inbox and after_id, and reports, without a failed
request. The figures themselves are for the full-size run (see the README)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.postgres import available

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pg_size.py"

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    ok, reason = available()
    if shutil.which("wrk") is None:
        ok, reason = False, "wrk is not installed (apt-get install wrk)"
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    run = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--conversations",
            "2000",
            "--messages",
            "20000",
            "--duration",
            "1",
            "--samples",
            "3",
            "--small",
            "300",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path_factory.mktemp("bench"),
        env={k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")},
    )
    # 1: a figure missed its target, which a busy test machine may well do; 2: set-up failed.
    assert run.returncode in (0, 1), run.stderr[-3000:]
    return json.loads(run.stdout)


def test_the_seed_has_the_asked_size(report: dict[str, object]) -> None:
    rows = report["rows"]
    assert isinstance(rows, dict)
    assert rows["conversations"] == 2000 and rows["messages"] == 20000
    assert rows["end_users"] == 400 and rows["conversation_history"] > 2000


def test_every_fin_operation_ran_without_a_failure(report: dict[str, object]) -> None:
    fin = report["fin_api"]
    assert isinstance(fin, dict)
    operations = {op["operation"]: op for op in fin["operations"]}
    assert set(operations) == {
        "get_conversation",
        "get_messages",
        "create_message",
        "update_conversation",
    }
    for op in operations.values():
        assert op["unexpected_status"] == 0, op
        for run in ("connections_16", "connections_1", "small_database_16"):
            assert op[run]["requests"] > 0 and op[run]["failed"] == 0, op


def test_the_inbox_counts_and_after_id_were_timed(report: dict[str, object]) -> None:
    inbox = report["inbox"]
    assert isinstance(inbox, list)
    assert [page["what"] for page in inbox] == [
        f"queue page: {queue}" for queue in ("waiting", "mine", "fin", "all")
    ]
    for item in [*inbox, report["queue_counts"], report["queue_counts_by_count"]]:
        assert isinstance(item, dict)
        assert item["samples"] == 3 and item["errors"] == 0, item
    after_id = report["after_id"]
    assert isinstance(after_id, dict)
    assert after_id["short"]["errors"] == 0 and after_id["long"]["errors"] == 0
    assert report["errors_logged"] == {}
