"""``intercom_export.service.Exporter`` against the emulated Reporting Data Export: rows stored,
a run killed after enqueueing resumed by polling, never more than 5 pending jobs, 429s waited
out, days already downloaded left alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from export_world import World, start_world
from sqlalchemy import func, select
from support.receiver import eventually
from support.server import database_url

from findesk.intercom_export.models import IntercomReportJob, IntercomReportRow
from findesk.intercom_export.service import ExportSummary

ENQUEUE = "/export/reporting_data/enqueue"
STATUS = "/export/reporting_data/"


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    wired = start_world(tmp_path, database_url(request.param, request, tmp_path))
    yield wired
    wired.stop()


def today() -> datetime:
    return datetime.now(UTC)


def stored_rows(world: World) -> list[IntercomReportRow]:
    with world.findesk.db.read_session() as session:
        return list(session.scalars(select(IntercomReportRow)))


def jobs_with(world: World, status: str) -> int:
    with world.findesk.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(IntercomReportJob)
                .where(IntercomReportJob.status == status)
            )
            or 0
        )


def in_background(world: World, since: datetime, until: datetime):  # type: ignore[no-untyped-def]
    exporter = world.exporter()
    result: dict[str, ExportSummary] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("summary", exporter.export(since.date(), until.date())),
        daemon=True,
    )
    thread.start()
    return exporter, thread, result


def test_an_export_stores_one_row_per_conversation_with_fins_outcome(world: World) -> None:
    answered = world.answered("ana")
    handed = world.handed_over("bo")
    with world.exporter() as exporter:
        summary = exporter.export(today().date(), today().date())
    assert summary.ok, summary.describe()
    assert (summary.enqueued, summary.downloaded, summary.rows) == (1, 1, 2)
    rows = {row.external_reference: row for row in stored_rows(world)}
    assert set(rows) == {answered.conversation_id, handed.conversation_id}
    assert rows[answered.conversation_id].fin_resolution_state == "assumed_resolution"
    assert rows[handed.conversation_id].fin_resolution_state == "routed_to_team"
    assert rows[answered.conversation_id].fin_participated is True
    assert rows[answered.conversation_id].intercom_conversation_id.isdigit()
    assert rows[answered.conversation_id].raw["conversation_id"] == (
        rows[answered.conversation_id].intercom_conversation_id
    )
    # The downloads carried the Accept header the API demands (else it answers 406).
    downloads = world.traffic.since(prefix="/download/reporting_data/")
    assert [hit.status for hit in downloads] == [200]


def test_a_day_downloaded_after_it_ended_is_not_fetched_again_unless_forced(world: World) -> None:
    yesterday = (today() - timedelta(days=1)).date()
    with world.exporter() as exporter:
        first = exporter.export(yesterday, yesterday)
        again = exporter.export(yesterday, yesterday)
        forced = exporter.export(yesterday, yesterday, force=True)
    assert (first.enqueued, first.downloaded) == (1, 1)
    assert (again.enqueued, again.downloaded, again.skipped_days) == (0, 0, 1)
    assert (forced.enqueued, forced.downloaded) == (1, 1)
    assert world.reporting.enqueued() == 2


def test_a_run_killed_after_enqueueing_resumes_by_polling_not_enqueueing(world: World) -> None:
    world.answered("cy")
    world.reporting.hold = True  # Intercom keeps working on every job
    since = today() - timedelta(days=2)
    exporter, thread, result = in_background(world, since, today())
    assert eventually(lambda: jobs_with(world, "pending") == 3, timeout=20)
    exporter.stop()  # the process dies: only what is stored survives
    thread.join(timeout=20)
    exporter.close()
    assert result["summary"].error == "stopped"
    assert world.reporting.enqueued() == 3

    world.reporting.hold = False
    with world.exporter() as rerun:
        summary = rerun.export(since.date(), today().date())
    assert summary.ok, summary.describe()
    assert (summary.resumed, summary.enqueued, summary.downloaded) == (3, 0, 3)
    assert world.reporting.enqueued() == 3  # nothing enqueued twice
    assert len(stored_rows(world)) == 1
    assert jobs_with(world, "downloaded") == 3


def test_never_more_than_five_jobs_pending_while_exporting_eight_days(world: World) -> None:
    world.reporting.hold = True
    since = today() - timedelta(days=7)
    exporter, thread, result = in_background(world, since, today())
    # Five jobs, and their five calls logged (a call is logged once answered, after the job
    # counts): the mark comes after all of them.
    assert eventually(
        lambda: world.reporting.enqueued() == 5 and len(world.traffic.since(prefix=ENQUEUE)) == 5,
        timeout=20,
    )
    mark = world.traffic.mark()
    # The exporter keeps polling its five jobs; it does not try a sixth.
    assert eventually(lambda: len(world.traffic.since(mark, STATUS)) >= 20, timeout=20)
    assert world.reporting.enqueued() == 5
    assert not world.traffic.since(mark, ENQUEUE)
    world.reporting.hold = False
    thread.join(timeout=30)
    exporter.close()
    summary = result["summary"]
    assert summary.ok, summary.describe()
    assert (summary.enqueued, summary.downloaded, summary.most_pending) == (8, 8, 5)
    assert summary.rate_limited == 0
    assert all(hit.status != 429 for hit in world.traffic.since())
    assert jobs_with(world, "downloaded") == 8


def test_a_429_with_retry_after_is_waited_out_then_sent_again(world: World) -> None:
    world.traffic.fail(
        429, method="POST", path=ENQUEUE, times=1, code="rate_limit_exceeded", retry_after=1.0
    )
    with world.exporter() as exporter:
        summary = exporter.export(today().date(), today().date())
    assert summary.ok, summary.describe()
    hits = world.traffic.since(prefix=ENQUEUE)
    assert [hit.status for hit in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 1.0
    assert summary.rate_limited == 1
    assert world.reporting.enqueued() == 1
