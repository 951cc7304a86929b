"""The Data Connectors emulator's own state: connectors (a draft and a live version each) and
their execution results.

Kept in the same database (and on the same engine) as the AI Content emulator's store, with its
own ``MetaData`` and ``create_all`` (no Alembic: this is the Intercom side of the wire). A
connector's configuration is a JSON document per version: ``draft`` is what PATCH edits,
``live`` what was last published (``state: live``) and what executions use. Header values are
stored as configured (they are needed for calling); only the API's answers redact them.

Times are integer milliseconds since the epoch, so that "most recently updated first" and the
cursors built on it are exact.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    and_,
    delete,
    or_,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class ConnectorsBase(DeclarativeBase):
    metadata = MetaData()


class ConnectorRow(ConnectorsBase):
    __tablename__ = "data_connectors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(8))
    draft: Mapped[str] = mapped_column(Text)  # JSON
    live: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON; None: never published
    created_by_admin_id: Mapped[str] = mapped_column(String(32))
    updated_by_admin_id: Mapped[str] = mapped_column(String(32))
    created_ms: Mapped[int] = mapped_column(Integer)
    updated_ms: Mapped[int] = mapped_column(Integer, index=True)
    last_executed_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ExecutionRow(ConnectorsBase):
    __tablename__ = "data_connector_execution_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector_id: Mapped[int] = mapped_column(
        ForeignKey("data_connectors.id", ondelete="CASCADE"), index=True
    )
    success: Mapped[bool] = mapped_column(Boolean)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    execution_time_ms: Mapped[int] = mapped_column(Integer)
    source_type: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_url: Mapped[str] = mapped_column(Text)
    request_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_ms: Mapped[int] = mapped_column(Integer, index=True)


@dataclass(frozen=True)
class Connector:
    id: int
    state: str  # draft | live
    draft: dict[str, Any]
    live: dict[str, Any] | None
    created_by_admin_id: str
    updated_by_admin_id: str
    created_ms: int
    updated_ms: int
    last_executed_ms: int | None

    def version(self, which: str) -> dict[str, Any]:
        """The configuration of ``which`` (draft|live); live falls back to the draft while the
        connector has never been published."""
        if which == "live" and self.live is not None:
            return self.live
        return self.draft


@dataclass(frozen=True)
class Execution:
    id: int
    connector_id: int
    success: bool
    http_status: int | None
    error_type: str | None
    error_message: str | None
    execution_time_ms: int
    source_type: str
    source_id: str | None
    conversation_id: str | None
    request_url: str
    request_body: str | None
    response_body: str | None
    created_ms: int


class InUse(Exception):
    """The connector is in use: it may not be set to draft or deleted."""


class NotDraft(Exception):
    """Only a draft connector may be deleted."""


def _connector(row: ConnectorRow) -> Connector:
    return Connector(
        id=row.id,
        state=row.state,
        draft=json.loads(row.draft),
        live=None if row.live is None else json.loads(row.live),
        created_by_admin_id=row.created_by_admin_id,
        updated_by_admin_id=row.updated_by_admin_id,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        last_executed_ms=row.last_executed_ms,
    )


def _execution(row: ExecutionRow) -> Execution:
    return Execution(
        id=row.id,
        connector_id=row.connector_id,
        success=row.success,
        http_status=row.http_status,
        error_type=row.error_type,
        error_message=row.error_message,
        execution_time_ms=row.execution_time_ms,
        source_type=row.source_type,
        source_id=row.source_id,
        conversation_id=row.conversation_id,
        request_url=row.request_url,
        request_body=row.request_body,
        response_body=row.response_body,
        created_ms=row.created_ms,
    )


def _dump(config: dict[str, Any]) -> str:
    return json.dumps(config, separators=(",", ":"))  # key order kept: the mock's order


class DataConnectorStore:
    """Data connectors and their execution results.

    ``in_use_seconds``: a connector executed within that many seconds is "in use" (see
    ``data_connectors_api``); tests may change it.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        *,
        in_use_seconds: float = 300.0,
    ) -> None:
        self.engine = engine
        ConnectorsBase.metadata.create_all(engine)
        self._clock = clock
        self._write_lock = threading.Lock()
        self.in_use_seconds = in_use_seconds

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def in_use(self, connector: Connector) -> bool:
        last = connector.last_executed_ms
        return last is not None and self.now_ms() - last < self.in_use_seconds * 1000

    # --- connectors --------------------------------------------------------------------------

    def create(self, config: dict[str, Any], admin_id: str) -> Connector:
        now = self.now_ms()
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = ConnectorRow(
                state="draft",
                draft=_dump(config),
                live=None,
                created_by_admin_id=admin_id,
                updated_by_admin_id=admin_id,
                created_ms=now,
                updated_ms=now,
            )
            session.add(row)
            session.flush()
            return _connector(row)

    def get(self, connector_id: int) -> Connector | None:
        with Session(self.engine) as session:
            row = session.get(ConnectorRow, connector_id)
            return None if row is None else _connector(row)

    def all(self) -> list[Connector]:
        with Session(self.engine) as session:
            rows = session.scalars(select(ConnectorRow).order_by(ConnectorRow.id))
            return [_connector(r) for r in rows]

    def page(self, after: tuple[int, int] | None, limit: int) -> list[Connector]:
        """Most recently updated first; ``after``: the (updated_ms, id) of the last one seen."""
        query = select(ConnectorRow)
        if after is not None:
            updated, last_id = after
            query = query.where(
                or_(
                    ConnectorRow.updated_ms < updated,
                    and_(ConnectorRow.updated_ms == updated, ConnectorRow.id < last_id),
                )
            )
        query = query.order_by(ConnectorRow.updated_ms.desc(), ConnectorRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [_connector(r) for r in session.scalars(query)]

    def update(
        self, connector_id: int, changes: dict[str, Any], state: str | None, admin_id: str
    ) -> Connector | None:
        """Apply ``changes`` to the draft, then ``state``: ``live`` publishes the draft,
        ``draft`` withdraws the live version (InUse while the connector is in use)."""
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(ConnectorRow, connector_id)
            if row is None:
                return None
            if state == "draft" and row.state == "live" and self.in_use(_connector(row)):
                raise InUse(connector_id)
            draft = {**json.loads(row.draft), **changes}
            row.draft = _dump(draft)
            if state == "live":
                row.live = row.draft
                row.state = "live"
            elif state == "draft":
                row.live = None
                row.state = "draft"
            row.updated_by_admin_id = admin_id
            row.updated_ms = max(self.now_ms(), row.updated_ms + 1)
            session.flush()
            return _connector(row)

    def delete(self, connector_id: int) -> bool:
        """False when there is no such connector; InUse, NotDraft when it may not go."""
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(ConnectorRow, connector_id)
            if row is None:
                return False
            if self.in_use(_connector(row)):
                raise InUse(connector_id)
            if row.state != "draft":
                raise NotDraft(connector_id)
            session.execute(delete(ExecutionRow).where(ExecutionRow.connector_id == connector_id))
            session.delete(row)
            return True

    # --- execution results -------------------------------------------------------------------

    def record(self, connector_id: int, result: dict[str, Any]) -> Execution | None:
        """Store one execution result; None when the connector is gone meanwhile."""
        now = self.now_ms()
        with self._write_lock, Session(self.engine) as session, session.begin():
            connector = session.get(ConnectorRow, connector_id)
            if connector is None:
                return None
            connector.last_executed_ms = now
            row = ExecutionRow(connector_id=connector_id, created_ms=now, **result)
            session.add(row)
            session.flush()
            return _execution(row)

    def execution(self, connector_id: int, execution_id: int) -> Execution | None:
        with Session(self.engine) as session:
            row = session.get(ExecutionRow, execution_id)
            if row is None or row.connector_id != connector_id:
                return None
            return _execution(row)

    def executions(
        self,
        connector_id: int,
        *,
        start_ms: int,
        end_ms: int,
        success: bool | None,
        error_type: str | None,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Execution]:
        """Most recent first, created within [start_ms, end_ms]."""
        query = select(ExecutionRow).where(
            ExecutionRow.connector_id == connector_id,
            ExecutionRow.created_ms >= start_ms,
            ExecutionRow.created_ms <= end_ms,
        )
        if success is not None:
            query = query.where(ExecutionRow.success.is_(success))
        if error_type is not None:
            query = query.where(ExecutionRow.error_type == error_type)
        if after is not None:
            created, last_id = after
            query = query.where(
                or_(
                    ExecutionRow.created_ms < created,
                    and_(ExecutionRow.created_ms == created, ExecutionRow.id < last_id),
                )
            )
        query = query.order_by(ExecutionRow.created_ms.desc(), ExecutionRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [_execution(r) for r in session.scalars(query)]
