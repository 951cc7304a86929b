from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class IntercomReportJob(Base):
    """One export job of a dataset over a range (a day at most), stored before it is enqueued
    so that a run that dies after enqueueing resumes by polling ``job_identifier``.

    ``status``: ``new`` (not enqueued yet, or to enqueue again), ``pending`` (Intercom works on
    it), ``downloaded`` (its rows are stored), ``failed`` (Intercom said so, or it was refused;
    ``error``)."""

    __tablename__ = "intercom_report_jobs"
    __table_args__ = (
        UniqueConstraint("dataset_id", "range_start", "range_end"),
        Index("ix_intercom_report_jobs_status", "status"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    dataset_id: Mapped[str] = mapped_column(String(64))
    attribute_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    range_start: Mapped[datetime] = mapped_column(UTCDateTime)
    range_end: Mapped[datetime] = mapped_column(UTCDateTime)
    job_identifier: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="new")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntercomReportRow(Base):
    """One row of a downloaded export (a conversation, for the ``conversation`` dataset):
    the columns reconciliation reads, and the whole row as Intercom sent it (``raw``)."""

    __tablename__ = "intercom_report_rows"
    __table_args__ = (
        Index("ix_intercom_report_rows_job", "job_id"),
        Index("ix_intercom_report_rows_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("intercom_report_jobs.id", ondelete="CASCADE"))
    intercom_conversation_id: Mapped[str | None] = mapped_column(String(64))
    external_reference: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fin_participated: Mapped[bool | None] = mapped_column(Boolean)
    fin_resolution_state: Mapped[str | None] = mapped_column(String(64))
    fin_resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
