from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class IntercomConnector(Base):
    """One connector definition (a lookup, by its ``key``) as it stands in Intercom.

    ``sent`` is what was last sent of its definition (the fields findesk manages) and
    ``fingerprint`` its hash, so that a sync PATCHes only the fields that changed and an unchanged
    definition costs nothing. ``removed`` marks a definition that disappeared: its connector is
    deleted in Intercom, and the row with it, unless Intercom refuses (``delete_refused_at``,
    retried on later syncs). The ``last_*`` and ``executions_*`` columns summarise the execution
    results read back from Intercom (``results_read_until``: Unix seconds they were read up to);
    the recent ones themselves are ``IntercomConnectorExecution`` rows.
    """

    __tablename__ = "intercom_connectors"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    intercom_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(8))  # draft | live, as last set
    sent: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delete_refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    results_read_until: Mapped[int | None] = mapped_column(BigInteger)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error_type: Mapped[str | None] = mapped_column(String(64))
    last_execution_ms: Mapped[int | None] = mapped_column(Integer)
    executions_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    executions_failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IntercomConnectorExecution(Base):
    """One execution result read back from Intercom (a bounded history per connector)."""

    __tablename__ = "intercom_connector_executions"
    __table_args__ = (Index("ix_intercom_connector_executions_key_executed", "key", "executed_at"),)

    key: Mapped[str] = mapped_column(
        ForeignKey("intercom_connectors.key", ondelete="CASCADE"), primary_key=True
    )
    result_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    success: Mapped[bool] = mapped_column(Boolean)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    execution_time_ms: Mapped[int | None] = mapped_column(Integer)
    source_type: Mapped[str | None] = mapped_column(String(32))
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    executed_at: Mapped[datetime] = mapped_column(UTCDateTime)
