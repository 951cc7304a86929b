"""``findesk report``: run for real against a SQLite file (JSON, CSV to a file, bad dates),
and in process with the engine's rows replaced, to see the per-conversation export written."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.cli import Cli
from support.reports import CONVERSATION_ROWS, sample_report
from typer.testing import CliRunner

from findesk import cli as findesk_cli
from findesk.kit.settings import get_settings
from findesk.reports import export
from findesk.reports import service as reports
from findesk.reports.schemas import Report, ReportQuery


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A data folder holding the demo's conversations (made today)."""
    seeded = Cli(tmp_path_factory.mktemp("report-cli") / "data")
    result = seeded.run("demo", "--seed-only", "--json")
    assert result.returncode == 0, result.stderr
    return seeded


def conversations_in(cli: Cli) -> set[str]:
    with sqlite3.connect(cli.database_path) as db:
        return {row[0] for row in db.execute("select id from conversations")}


def test_report_as_json_covers_the_last_30_days(cli: Cli) -> None:
    result = cli.run("report", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = Report.model_validate(json.loads(result.stdout))
    assert report.totals.conversations == len(conversations_in(cli)) > 0
    assert report.query.end - report.query.start == timedelta(days=29)
    assert abs((report.query.end - date.today()).days) <= 1  # "today" in the report time zone
    weekly = cli.run("report", "--format", "json", "--view", "series", "--bucket", "week")
    assert weekly.returncode == 0, weekly.stderr
    assert json.loads(weekly.stdout)["query"]["bucket"] == "week"


def test_conversations_as_csv_to_a_file(cli: Cli) -> None:
    target = cli.data_dir.parent / "f.csv"
    result = cli.run(
        "report", "--view", "conversations", "--format", "csv", "--output", str(target)
    )
    assert result.returncode == 0, result.stderr
    expected = conversations_in(cli)
    assert f"Wrote {len(expected)} conversation(s)" in result.stderr
    with target.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert {row["conversation_id"] for row in table} == expected
    assert list(table[0]) == export.conversation_columns()


def test_the_summary_views_as_csv_and_table(cli: Cli) -> None:
    csv_out = cli.run("report", "--view", "response-times", "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    rows = list(csv.reader(csv_out.stdout.splitlines()))
    assert rows[0] == ["key", "label", "count"] and len(rows) == 8
    table = cli.run("report", "--start", "2026-01-01", "--end", "2026-01-31")
    assert table.returncode == 0, table.stderr
    assert "2026-01-31" in table.stdout and "conversations" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start", "2026-02-01", "--end", "2026-01-01"), "end date is before the start"),
        (("--start", "2020-01-01", "--end", "2026-01-01"), "at most two years"),
        (("--start", "tomorrow"), "is not a date"),
        (("--view", "everything"), "--view must be"),
        (("--format", "xml"), "--format must be"),
    ],
)
def test_bad_options_fail_with_a_message(cli: Cli, args: tuple[str, ...], message: str) -> None:
    assert message in cli.fails("report", *args)


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("FINDESK_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_the_conversations_export_writes_every_row(
    in_process: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[ReportQuery] = []

    def rows(_session: Any, _settings: Any, query: ReportQuery) -> Iterator[dict[str, Any]]:
        asked.append(query)
        return iter(CONVERSATION_ROWS * 600)  # more than one chunk

    monkeypatch.setattr(reports, "conversation_rows", rows)
    monkeypatch.setattr(reports, "refresh_if_stale", lambda *_: None)
    monkeypatch.setattr(reports, "count_conversations", lambda *_: len(CONVERSATION_ROWS) * 600)
    target = tmp_path / "all.csv"
    args = ["report", "--view", "conversations", "--tag", "billing", "--output", str(target)]
    result = in_process.invoke(findesk_cli.app, [*args, "--format", "csv"])
    assert result.exit_code == 0, result.output
    with target.open(newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == list(CONVERSATION_ROWS[0])
    assert len(table) == 1201 and table[1][4] == "'@SUM(A1)"
    assert asked[0].tag == "billing"
    as_json = in_process.invoke(findesk_cli.app, [*args, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    lines = target.read_text().splitlines()
    assert len(lines) == 1200 and json.loads(lines[1])["id"] == "conv_2"


def test_a_reports_numbers_on_the_command_line(
    in_process: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "build_report", lambda _s, _c, query: sample_report(query))
    monkeypatch.setattr(reports, "refresh_if_stale", lambda *_: None)
    agents = in_process.invoke(findesk_cli.app, ["report", "--view", "agents", "--format", "csv"])
    assert agents.exit_code == 0, agents.output
    assert "'-Bob" in agents.stdout
    totals = in_process.invoke(findesk_cli.app, ["report"])
    assert totals.exit_code == 0, totals.output
    assert "durable_fin_resolutions" in totals.stdout and "35" in totals.stdout
