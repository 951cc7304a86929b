"""``FINDESK_INTERCOM_EXPORT_DAILY``: ``findesk serve`` pulls the previous day once, by itself;
and ``findesk intercom export`` does the same on demand, with its summary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from export_world import ADMIN_TOKEN, World, start_world
from sqlalchemy import create_engine, select
from support.cli import Cli
from support.receiver import eventually
from support.server import database_url

from findesk.emulator.reporting_store import ReportingStore
from findesk.intercom_export.models import IntercomReportJob, IntercomReportRow
from findesk.intercom_export.service import DailyExportLoop


@pytest.fixture(params=["sqlite", "postgres"])
def daily(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """findesk with the daily export on, and Fin's record of a conversation yesterday already
    in the emulator when findesk starts (its first pull happens at once)."""
    state = tmp_path / "emulator"
    state.mkdir()
    engine = create_engine(f"sqlite:///{state / 'content.db'}")
    fin_resolved_yesterday(ReportingStore(engine), "conv_yesterday")
    engine.dispose()
    url = database_url(request.param, request, tmp_path)
    wired = start_world(tmp_path, url, daily_export=True)
    yield wired
    wired.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    wired = start_world(tmp_path, database_url(request.param, request, tmp_path))
    yield wired
    wired.stop()


def yesterday_noon() -> datetime:
    return (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0)


def fin_resolved_yesterday(store: ReportingStore, conversation_id: str) -> None:
    """What Fin did yesterday, as the emulator records a run (no findesk needed for it)."""
    at = yesterday_noon().isoformat().replace("+00:00", "Z")
    store.record_run(
        conversation_id,
        "usr_x",
        [{"id": "m1", "created_at": at}],
        {"id": "m2", "created_at": at},
        "fin",
        "open",
    )


def downloaded_days(world: World) -> list[str]:
    with world.findesk.db.read_session() as session:
        return [
            job.range_start.date().isoformat()
            for job in session.scalars(
                select(IntercomReportJob).where(IntercomReportJob.status == "downloaded")
            )
        ]


def test_serve_pulls_yesterday_once_by_itself(daily: World) -> None:
    world = daily
    day = yesterday_noon().date().isoformat()
    loop: DailyExportLoop = world.findesk.app.state.daily_export
    loop.wake()  # its first pull may have met the emulator not listening yet
    assert eventually(lambda: downloaded_days(world) == [day], timeout=30)
    with world.findesk.db.read_session() as session:
        references = list(session.scalars(select(IntercomReportRow.external_reference)))
    assert references == ["conv_yesterday"]
    assert loop.pull_yesterday() is None  # done: not fetched again
    assert world.reporting.enqueued() == 1


def test_the_export_command_pulls_the_days_asked_for(world: World, tmp_path: Path) -> None:
    fin_resolved_yesterday(world.reporting, "conv_cli")
    day = yesterday_noon().date().isoformat()
    cli = Cli(tmp_path / "data")
    cli.env.update(
        FINDESK_DATABASE_URL=world.findesk.database_url,
        FINDESK_INTERCOM_ACCESS_TOKEN=ADMIN_TOKEN,
        FINDESK_INTERCOM_API_URL=world.emulator.base_url,
        FINDESK_INTERCOM_APP_ID="app-1",
        FINDESK_INTERCOM_CLIENT_ID="client-1",
    )
    first = cli.run("intercom", "export", "--since", day, "--until", day, "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["ok"] and summary["rows"] >= 1 and summary["days"] == 1
    again = cli.run("intercom", "export", "--since", day, "--until", day)
    assert again.returncode == 0, again.stderr
    assert "0 day(s) downloaded" in again.stdout and "1 already there" in again.stdout
    bad = cli.fails("intercom", "export", "--since", "yesterday")
    assert "--since must be a date" in bad
    cli.env.pop("FINDESK_INTERCOM_APP_ID")
    assert "FINDESK_INTERCOM_APP_ID" in cli.fails("intercom", "export")
