"""The Reporting Data Export emulator's own state: what Fin did in each conversation (recorded by
the sync engine's runs, see ``RecordingMemory``) and the export jobs.

Kept in the content emulator's database (its own ``MetaData`` and ``create_all``, no Alembic:
this is Intercom's side of the wire). Times are Unix seconds (floats).

What the emulator decides, where Intercom says nothing we could find:

* Intercom's conversation id is a number it hands out; here ``FIRST_INTERCOM_ID`` plus the row's
  sequence, as a string. The helpdesk's conversation id is the conversation's external
  reference (``conversation.external_references[].id``, type ``custom_helpdesk_conversation``).
* A conversation "started" when Fin first saw it: the ``created_at`` of the earliest message a
  run fetched (the helpdesk's clock), else the time of that run.
* Fin's resolution state (``fin_ai_agent_resolution_state``, the values of the ``ai_agent``
  object of Intercom's conversations): ``routed_to_team`` once Fin handed over or a human took
  the conversation; else ``confirmed_resolution`` when it was resolved while Fin owned it; else
  ``assumed_resolution`` when Fin replied (the end user did not ask for more); empty when Fin
  never replied. ``plant`` overrides what is reported for one conversation (a test's or the
  demo's planted disagreement).
* A job is ``pending`` for ``job_seconds`` after it is enqueued, then ``complete`` (or
  ``failed``, for a job enqueued while ``fail_next`` was set); ``hold`` keeps every job pending
  until it is cleared. Its file is built when it is downloaded.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Engine, Float, Integer, MetaData, String, Text, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from findesk.emulator.sync import Memory, Owner, Seen

FIRST_INTERCOM_ID = 215_000_000_000
RESOLUTION_STATES = ("assumed_resolution", "confirmed_resolution", "routed_to_team", "abandoned")


class ReportingBase(DeclarativeBase):
    metadata = MetaData()


class FinOutcomeRow(ReportingBase):
    __tablename__ = "reporting_fin_outcomes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(80), unique=True)  # the helpdesk's id
    user_id: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    status: Mapped[str | None] = mapped_column(String(16))
    fin_replies: Mapped[int] = mapped_column(Integer, default=0)
    fin_last_reply_at: Mapped[float | None] = mapped_column(Float)
    routed_at: Mapped[float | None] = mapped_column(Float)  # handed over or taken by a human
    resolved_at: Mapped[float | None] = mapped_column(Float)  # resolved while Fin owned it
    planted_state: Mapped[str | None] = mapped_column(String(32))


class ExportJobRow(ReportingBase):
    __tablename__ = "reporting_export_jobs"

    job_identifier: Mapped[str] = mapped_column(String(40), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(64))
    attribute_ids: Mapped[str] = mapped_column(Text)  # JSON list, as sent
    start_time: Mapped[int] = mapped_column(Integer)
    end_time: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    ready_at: Mapped[float] = mapped_column(Float)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class FinOutcome:
    intercom_id: str
    conversation_id: str
    started_at: float
    status: str | None
    fin_participated: bool
    fin_last_reply_at: float | None
    routed_at: float | None
    resolved_at: float | None
    resolution_state: str  # "" when Fin never replied

    @property
    def resolution_at(self) -> float | None:
        """When the reported state was reached."""
        if self.resolution_state == "routed_to_team":
            return self.routed_at
        if self.resolution_state == "confirmed_resolution":
            return self.resolved_at or self.fin_last_reply_at
        if self.resolution_state == "assumed_resolution":
            return self.fin_last_reply_at or self.started_at
        return None


@dataclass(frozen=True)
class ExportJob:
    job_identifier: str
    dataset_id: str
    attribute_ids: list[str]
    start_time: int
    end_time: int
    created_at: float
    ready_at: float
    failed: bool


def _outcome(row: FinOutcomeRow) -> FinOutcome:
    if row.planted_state is not None:
        state = row.planted_state
    elif row.routed_at is not None:
        state = "routed_to_team"
    elif row.resolved_at is not None and row.fin_replies:
        state = "confirmed_resolution"
    elif row.fin_replies:
        state = "assumed_resolution"
    else:
        state = ""
    return FinOutcome(
        intercom_id=str(FIRST_INTERCOM_ID + row.seq),
        conversation_id=row.conversation_id,
        started_at=row.started_at,
        status=row.status,
        fin_participated=row.fin_replies > 0,
        fin_last_reply_at=row.fin_last_reply_at,
        routed_at=row.routed_at,
        resolved_at=row.resolved_at,
        resolution_state=state,
    )


def _job(row: ExportJobRow) -> ExportJob:
    return ExportJob(
        job_identifier=row.job_identifier,
        dataset_id=row.dataset_id,
        attribute_ids=list(json.loads(row.attribute_ids)),
        start_time=row.start_time,
        end_time=row.end_time,
        created_at=row.created_at,
        ready_at=row.ready_at,
        failed=row.failed,
    )


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ReportingStore:
    """Fin's outcomes per conversation and the export jobs; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        *,
        job_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        ReportingBase.metadata.create_all(engine)
        self._clock = clock
        self._lock = threading.Lock()
        self.job_seconds = job_seconds
        self.hold = False  # keep every job pending (tests: a job still running)
        self.fail_next = False  # the next enqueued job fails

    def now(self) -> float:
        return self._clock()

    # --- Fin's record ---------------------------------------------------------------------

    def record_run(
        self,
        conversation_id: str,
        user_id: str | None,
        messages: list[dict[str, Any]],
        reply: dict[str, Any] | None,
        owner: Owner | None,
        status: str | None,
    ) -> None:
        """One sync run's outcome (``remember``'s arguments)."""
        now = self.now()
        earliest = min(
            (t for t in (_timestamp(m.get("created_at")) for m in messages) if t is not None),
            default=None,
        )
        with self._lock, Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(FinOutcomeRow).where(FinOutcomeRow.conversation_id == conversation_id)
            ).one_or_none()
            if row is None:
                row = FinOutcomeRow(
                    conversation_id=conversation_id,
                    started_at=earliest if earliest is not None else now,
                    fin_replies=0,
                )
                session.add(row)
            elif earliest is not None and earliest < row.started_at:
                row.started_at = earliest
            if user_id is not None:
                row.user_id = user_id
            if status is not None:
                row.status = status
            if reply is not None:
                row.fin_replies = (row.fin_replies or 0) + 1
                row.fin_last_reply_at = _timestamp(reply.get("created_at")) or now
            if owner in ("waiting", "human") and row.routed_at is None and row.fin_replies:
                row.routed_at = now
            if owner == "fin" and status == "resolved" and row.resolved_at is None:
                row.resolved_at = now

    def plant(self, conversation_id: str, state: str | None) -> FinOutcome | None:
        """Report ``state`` for this conversation whatever happened (None: the truth again)."""
        with self._lock, Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(FinOutcomeRow).where(FinOutcomeRow.conversation_id == conversation_id)
            ).one_or_none()
            if row is None:
                return None
            row.planted_state = state
            session.flush()
            return _outcome(row)

    def outcome(self, conversation_id: str) -> FinOutcome | None:
        with Session(self.engine) as session:
            row = session.scalars(
                select(FinOutcomeRow).where(FinOutcomeRow.conversation_id == conversation_id)
            ).one_or_none()
            return None if row is None else _outcome(row)

    def outcomes(self, start_time: float, end_time: float) -> list[FinOutcome]:
        """The conversations started in [start_time, end_time), oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(FinOutcomeRow)
                .where(FinOutcomeRow.started_at >= start_time, FinOutcomeRow.started_at < end_time)
                .order_by(FinOutcomeRow.started_at, FinOutcomeRow.seq)
            )
            return [_outcome(r) for r in rows]

    # --- export jobs ----------------------------------------------------------------------

    def status(self, job: ExportJob) -> str:
        if job.failed:
            return "failed"
        if self.hold or self.now() < job.ready_at:
            return "pending"
        return "complete"

    def enqueue(
        self, dataset_id: str, attribute_ids: list[str], start_time: int, end_time: int, limit: int
    ) -> ExportJob | None:
        """A new job, or None when ``limit`` jobs are pending already."""
        now = self.now()
        with self._lock, Session(self.engine) as session, session.begin():
            jobs = [_job(r) for r in session.scalars(select(ExportJobRow))]
            if sum(1 for j in jobs if self.status(j) == "pending") >= limit:
                return None
            row = ExportJobRow(
                job_identifier=secrets.token_hex(10),
                dataset_id=dataset_id,
                attribute_ids=json.dumps(attribute_ids),
                start_time=start_time,
                end_time=end_time,
                created_at=now,
                ready_at=now + self.job_seconds,
                failed=self.fail_next,
            )
            self.fail_next = False
            session.add(row)
            session.flush()
            return _job(row)

    def job(self, job_identifier: str) -> ExportJob | None:
        with Session(self.engine) as session:
            row = session.get(ExportJobRow, job_identifier)
            return None if row is None else _job(row)

    def enqueued(self) -> int:
        """How many jobs were ever enqueued (tests: a resumed export enqueues none again)."""
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(ExportJobRow)) or 0)


class RecordingMemory:
    """The sync engine's ``Memory``: ``inner`` keeps what Fin has seen, ``store`` what Fin did."""

    def __init__(self, inner: Memory, store: ReportingStore) -> None:
        self.inner = inner
        self.store = store

    def seen(self, conversation_id: str) -> Seen:
        return self.inner.seen(conversation_id)

    def remember(
        self,
        conversation_id: str,
        user_id: str,
        messages: list[dict[str, Any]],
        reply: dict[str, Any] | None,
        owner: Owner | None,
        status: str | None = None,
    ) -> None:
        self.inner.remember(conversation_id, user_id, messages, reply, owner, status)
        self.store.record_run(conversation_id, user_id, messages, reply, owner, status)
