"""Pulls Intercom's Reporting Data Export into ``intercom_report_rows``.

An export is a set of jobs, one per dataset and UTC day (a longer range is split into days),
each stored (``intercom_report_jobs``) before it is enqueued and again once Intercom names it, so
that a run that dies after enqueueing resumes by polling the stored ``job_identifier`` instead
of enqueueing again. A run: enqueue the day jobs not yet done while fewer than
``PENDING_LIMIT`` of findesk's jobs are pending in Intercom (Intercom refuses a sixth with a
429), poll the pending ones every ``poll_seconds``, download each complete one
(``Accept: application/octet-stream``, gunzip, CSV) and replace its rows, in one transaction.
A day downloaded after it ended is not fetched again unless ``force``; a day downloaded before
it ended (today) is. A job Intercom marks failed is enqueued again, up to ``MAX_ATTEMPTS``.
One export at a time per database (``kit.exclusive``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any

from findesk.intercom_export import repository
from findesk.intercom_export.client import ReportingClient, parse_csv
from findesk.intercom_export.models import IntercomReportJob
from findesk.kit.commit_signal import BackgroundLoop
from findesk.kit.exclusive import exclusive
from findesk.kit.timeutil import as_utc, utcnow
from findesk.knowledge.content_api import ContentApiError, IntercomJob, Stopped

if TYPE_CHECKING:
    from findesk.kit.db import Database
    from findesk.kit.settings import Settings

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x66696E6578  # b"finex": one export per database at a time
PENDING_LIMIT = 5  # Intercom's limit of pending jobs (a workspace's; findesk keeps to it)
MAX_ATTEMPTS = 3
MAX_ERROR_LENGTH = 2000
CONVERSATION = "conversation"
# What reconciliation reads of the conversation dataset (see emulator.reporting_api for the
# ids Intercom does not document); those Intercom does not list are left out.
CONVERSATION_ATTRIBUTES = (
    "conversation_id",
    "conversation_started_at",
    "external_reference_id",
    "conversation_state",
    "fin_ai_agent_participated",
    "fin_ai_agent_resolution_state",
    "fin_ai_agent_resolved_at",
    "fin_ai_agent_routed_to_team_at",
)

Progress = Callable[[int, int], None]


@dataclass
class ExportSummary:
    dataset: str
    days: int = 0  # day ranges asked for
    skipped_days: int = 0  # already downloaded after they ended (not fetched again)
    enqueued: int = 0
    resumed: int = 0  # pending jobs of an earlier run, polled instead of enqueued
    downloaded: int = 0
    rows: int = 0
    failed: int = 0
    requests: int = 0
    rate_limited: int = 0
    most_pending: int = 0  # the most of findesk's jobs pending at once
    seconds: float = 0.0
    skipped: bool = False  # another export holds the lock
    error: str | None = None
    failures: dict[str, str] = field(default_factory=dict)  # day -> error

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def describe(self) -> str:
        if self.skipped:
            return "another export is running"
        text = (
            f"{self.downloaded} day(s) downloaded ({self.rows} rows), {self.skipped_days} "
            f"already there, {self.enqueued} job(s) enqueued, {self.resumed} resumed, "
            f"{self.failed} failed"
        )
        if self.error:
            text += f"; {self.error}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def day_ranges(since: date, until: date) -> list[tuple[datetime, datetime]]:
    """[start, end) of each UTC day from ``since`` to ``until`` (both included)."""
    days = []
    day = since
    while day <= until:
        start = datetime.combine(day, dtime(), tzinfo=UTC)
        days.append((start, start + timedelta(days=1)))
        day += timedelta(days=1)
    return days


def _unix(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return datetime.fromtimestamp(int(float(value)), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def row_fields(raw: dict[str, str]) -> dict[str, Any]:
    """The stored columns of one CSV row of the conversation dataset."""
    participated = (raw.get("fin_ai_agent_participated") or "").strip().lower()
    return {
        "intercom_conversation_id": (raw.get("conversation_id") or None),
        "external_reference": (raw.get("external_reference_id") or None),
        "started_at": _unix(raw.get("conversation_started_at")),
        "fin_participated": None if not participated else participated in ("true", "1", "yes"),
        "fin_resolution_state": (raw.get("fin_ai_agent_resolution_state") or None),
        "fin_resolved_at": _unix(raw.get("fin_ai_agent_resolved_at")),
        "raw": dict(raw),
    }


class Exporter(IntercomJob):
    purpose = "exporting Intercom's reporting data"

    def __init__(self, *args: Any, poll_seconds: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app_id, client_id = self.settings.intercom_app_id, self.settings.intercom_client_id
        if not app_id or not client_id:
            self.close()
            raise ValueError(
                f"{self.purpose} needs FINDESK_INTERCOM_APP_ID and FINDESK_INTERCOM_CLIENT_ID"
            )
        self.reporting = ReportingClient(self.client, app_id, client_id)
        self.poll_seconds = poll_seconds

    def export(
        self,
        since: date,
        until: date,
        *,
        dataset: str = CONVERSATION,
        force: bool = False,
        progress: Progress | None = None,
        wait: bool = True,
    ) -> ExportSummary:
        summary = ExportSummary(dataset=dataset)
        started = time.perf_counter()
        before = (self.client.stats.requests, self.client.stats.rate_limited)
        with exclusive(self.db, ADVISORY_LOCK_KEY, wait=wait, stop=self._stop) as acquired:
            if not acquired:
                summary.skipped = True
                return summary
            try:
                self._export(summary, since, until, dataset, force, progress)
            except Stopped:
                summary.error = "stopped"
            except ContentApiError as exc:
                summary.error = exc.message
        summary.requests = self.client.stats.requests - before[0]
        summary.rate_limited = self.client.stats.rate_limited - before[1]
        summary.seconds = time.perf_counter() - started
        log.log(
            logging.INFO if summary.ok else logging.WARNING,
            "intercom export",
            extra={"fields": summary.to_dict()},
        )
        return summary

    # --- a run ----------------------------------------------------------------------------

    def _attributes(self, dataset: str) -> list[str]:
        for entry in self.reporting.datasets():
            if entry.get("id") != dataset:
                continue
            listed = [str(a.get("id")) for a in entry.get("attributes") or [] if a.get("id")]
            if dataset == CONVERSATION:
                return [a for a in CONVERSATION_ATTRIBUTES if a in listed]
            return listed
        raise ContentApiError(f"Intercom has no {dataset!r} dataset")

    def _export(
        self,
        summary: ExportSummary,
        since: date,
        until: date,
        dataset: str,
        force: bool,
        progress: Progress | None,
    ) -> None:
        attributes = self._attributes(dataset)
        ranges = day_ranges(since, until)
        summary.days = len(ranges)
        now = utcnow()
        work: list[int] = []
        with self.db.transaction() as session:
            # Pending jobs of an earlier run (of any range) are finished first.
            resumed = [job.id for job in repository.pending_jobs(session)]
            summary.resumed = len(resumed)
            work.extend(resumed)
            for start, end in ranges:
                job = repository.job_for_range(session, dataset, start, end)
                if job is None:
                    job = IntercomReportJob(
                        dataset_id=dataset,
                        attribute_ids=attributes,
                        range_start=start,
                        range_end=end,
                        status="new",
                        attempts=0,
                        rows=0,
                    )
                    session.add(job)
                    session.flush()
                elif job.status == "pending":
                    continue  # resumed above
                elif (
                    job.status == "downloaded"
                    and not force
                    and job.downloaded_at is not None
                    and as_utc(job.downloaded_at) >= as_utc(job.range_end)
                ):
                    summary.skipped_days += 1
                    continue
                else:
                    job.status, job.job_identifier, job.error = "new", None, None
                    job.attempts = 0
                    job.attribute_ids = attributes
                    job.updated_at = now
                work.append(job.id)
        total = len(work) + summary.skipped_days
        done = summary.skipped_days
        if progress is not None:
            progress(done, total)
        while True:
            with self.db.read_session() as session:
                rows = repository.jobs(session, work)
                states = {job.id: (job.status, job.job_identifier) for job in rows}
                pending_anywhere = len(repository.pending_jobs(session))
            pending = [i for i in work if states[i][0] == "pending"]
            new = [i for i in work if states[i][0] == "new"]
            if not pending and not new:
                break
            for job_id in pending:
                identifier = states[job_id][1]
                assert identifier is not None
                if self._poll(job_id, identifier, summary):
                    done += 1
                    pending_anywhere -= 1
                    if progress is not None:
                        progress(done, total)
            for job_id in new:
                if pending_anywhere >= PENDING_LIMIT:
                    break
                if self._enqueue(job_id, summary):
                    pending_anywhere += 1
                else:
                    with self.db.read_session() as session:
                        if repository.jobs(session, [job_id])[0].status == "failed":
                            done += 1
                            if progress is not None:
                                progress(done, total)
            summary.most_pending = max(summary.most_pending, pending_anywhere)
            with self.db.read_session() as session:
                still = [j for j in repository.jobs(session, work) if j.status == "pending"]
            if still and self._stop.wait(self.poll_seconds):
                raise Stopped

    def _enqueue(self, job_id: int, summary: ExportSummary) -> bool:
        """Enqueue one stored job; True when Intercom took it (it is pending)."""
        with self.db.transaction() as session:
            job = repository.get_for_update(session, job_id)
            if job is None or job.status != "new":
                return False
            job.attempts += 1
            job.updated_at = utcnow()
            dataset, attributes = job.dataset_id, list(job.attribute_ids)
            start, end = (
                int(as_utc(job.range_start).timestamp()),
                int(as_utc(job.range_end).timestamp()),
            )
            day = as_utc(job.range_start).date().isoformat()
            attempts = job.attempts
        try:
            answer = self.reporting.enqueue(dataset, attributes, start, end)
        except ContentApiError as exc:
            if exc.unauthorized:
                raise
            final = not exc.transient or attempts >= MAX_ATTEMPTS
            self._note_failure(job_id, exc.message, final=final)
            if final:
                summary.failed += 1
                summary.failures[day] = exc.message
            return False
        identifier = str(answer.get("job_identifier") or "")
        with self.db.transaction() as session:
            job = repository.get_for_update(session, job_id)
            if job is None:
                return False
            job.job_identifier = identifier or None
            job.status = "pending" if identifier else "failed"
            job.error = None if identifier else "Intercom named no job_identifier"
            job.enqueued_at = job.updated_at = utcnow()
        if identifier:
            summary.enqueued += 1
        else:
            summary.failed += 1
            summary.failures[day] = "Intercom named no job_identifier"
        return bool(identifier)

    def _poll(self, job_id: int, identifier: str, summary: ExportSummary) -> bool:
        """Look at one pending job; download it when complete. True when it is finished
        (downloaded, or failed for good)."""
        try:
            answer = self.reporting.job(identifier)
        except ContentApiError as exc:
            if exc.status == 404:  # Intercom forgot it (expired): start it again
                with self.db.read_session() as session:
                    attempts = repository.jobs(session, [job_id])[0].attempts
                final = attempts >= MAX_ATTEMPTS
                self._note_failure(job_id, exc.message, final=final)
                if final:
                    summary.failed += 1
                return final
            raise
        status = str(answer.get("status") or "")
        if status == "pending" or status == "running" or not status:
            return False
        if status != "complete":
            with self.db.read_session() as session:
                attempts = repository.jobs(session, [job_id])[0].attempts
            final = attempts >= MAX_ATTEMPTS
            self._note_failure(job_id, f"Intercom says the job {status}", final=final)
            if final:
                summary.failed += 1
            return final
        content = self.reporting.download(identifier)
        parsed = [row_fields(raw) for raw in parse_csv(content)]
        with self.db.transaction() as session:
            job = repository.get_for_update(session, job_id)
            if job is None:
                return True
            repository.replace_rows(session, job_id, parsed)
            job.status = "downloaded"
            job.rows = len(parsed)
            job.error = None
            job.downloaded_at = job.updated_at = utcnow()
        summary.downloaded += 1
        summary.rows += len(parsed)
        return True

    def _note_failure(self, job_id: int, message: str, *, final: bool) -> None:
        with self.db.transaction() as session:
            job = repository.get_for_update(session, job_id)
            if job is None:
                return
            job.status = "failed" if final else "new"
            job.job_identifier = None
            job.error = message[:MAX_ERROR_LENGTH]
            job.updated_at = utcnow()


class DailyExportLoop(BackgroundLoop):
    """``FINDESK_INTERCOM_EXPORT_DAILY``: in ``findesk serve``, pulls the previous UTC day once
    it has ended, once: every ``check_seconds`` it looks whether that day is downloaded (after
    it ended) and, if not, exports it. One process at a time does it (``kit.exclusive``; the
    others skip), and a day once downloaded is not fetched again, whichever process did it.
    After a failed pull it tries again after ``retry_seconds``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        check_seconds: float = 3600.0,
        exporter: Exporter | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.exporter = exporter or Exporter(db, settings)
        self.check_seconds = check_seconds
        self.retry_seconds = settings.kb_retry_seconds

    def stop(self) -> None:
        self.exporter.stop()
        super().stop()

    def pull_yesterday(self) -> ExportSummary | None:
        """Export yesterday (UTC) unless it is downloaded already (None then)."""
        yesterday = utcnow().date() - timedelta(days=1)
        start, end = day_ranges(yesterday, yesterday)[0]
        with self.db.read_session() as session:
            job = repository.job_for_range(session, CONVERSATION, start, end)
            if (
                job is not None
                and job.status == "downloaded"
                and job.downloaded_at is not None
                and as_utc(job.downloaded_at) >= end
            ):
                return None
        return self.exporter.export(yesterday, yesterday, wait=False)

    async def run(self) -> None:
        self._alarm.arm()
        log.info("intercom daily export started")
        try:
            while not self._stopping:
                delay = self.check_seconds
                try:
                    summary = await asyncio.to_thread(self.pull_yesterday)
                    if summary is not None and not summary.ok and not summary.skipped:
                        delay = min(delay, self.retry_seconds)
                except Exception:  # a database hiccup must not end the loop
                    log.exception("intercom daily export failed")
                    delay = min(delay, self.retry_seconds)
                await self._sleep(delay)
        finally:
            await asyncio.to_thread(self.exporter.close)
            log.info("intercom daily export stopped")
