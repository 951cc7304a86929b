"""The AI Content emulator's own state: content import sources and their external pages.

Separate from findesk's schema on purpose (its own ``MetaData``, ``create_all`` on start, no
Alembic): this is the Intercom side of the wire, a small throwaway store. SQLite is the target;
writes are serialised by a process-wide lock, which makes the upsert by
(``source_id``, ``external_id``) race-free without dialect-specific ``ON CONFLICT`` SQL (the
unique constraint stays as a backstop).

Ids are integers handed out by the database. Sources expose theirs as an integer and pages as a
string, as Intercom's schemas do; the store deals in integers only.
"""

from __future__ import annotations

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
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool


class EmulatorBase(DeclarativeBase):
    metadata = MetaData()


class SourceRow(EmulatorBase):
    __tablename__ = "content_import_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    sync_behavior: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)
    last_synced_at: Mapped[int] = mapped_column(Integer)


class PageRow(EmulatorBase):
    __tablename__ = "external_pages"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("content_import_sources.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    locale: Mapped[str] = mapped_column(String(8))
    ai_agent_availability: Mapped[bool] = mapped_column(Boolean)
    ai_copilot_availability: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)
    last_ingested_at: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Source:
    id: int
    url: str
    sync_behavior: str
    status: str
    created_at: int
    updated_at: int
    last_synced_at: int


@dataclass(frozen=True)
class Page:
    id: int
    source_id: int
    external_id: str
    title: str
    html: str
    url: str | None
    locale: str
    ai_agent_availability: bool
    ai_copilot_availability: bool
    created_at: int
    updated_at: int
    last_ingested_at: int


@dataclass(frozen=True)
class ContentPage:
    """What the answerer needs of a page Fin may answer from."""

    id: int
    title: str
    html: str
    url: str | None


class SourceNotFound(LookupError):
    pass


class ExternalIdTaken(ValueError):
    """Another page of the same source already has this external id."""


def _source(row: SourceRow) -> Source:
    return Source(
        id=row.id,
        url=row.url,
        sync_behavior=row.sync_behavior,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_synced_at=row.last_synced_at,
    )


def _page(row: PageRow) -> Page:
    return Page(
        id=row.id,
        source_id=row.source_id,
        external_id=row.external_id,
        title=row.title,
        html=row.html,
        url=row.url,
        locale=row.locale,
        ai_agent_availability=row.ai_agent_availability,
        ai_copilot_availability=row.ai_copilot_availability,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_ingested_at=row.last_ingested_at,
    )


def _make_engine(db_url: str) -> Engine:
    if not db_url.startswith("sqlite"):
        return create_engine(db_url)
    in_memory = db_url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in db_url
    engine = create_engine(
        db_url,
        connect_args={"check_same_thread": False, "timeout": 30},
        # One shared connection, or every pooled connection would see its own empty database.
        poolclass=StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


class ContentStore:
    """The Fin Content Library's sources and external pages, in the emulator's own database."""

    def __init__(self, db_url: str, clock: Callable[[], float] = time.time) -> None:
        self.engine = _make_engine(db_url)
        EmulatorBase.metadata.create_all(self.engine)
        self._clock = clock
        self._write_lock = threading.Lock()

    def dispose(self) -> None:
        self.engine.dispose()

    def _now(self) -> int:
        return int(self._clock())

    # --- sources ---------------------------------------------------------------------------

    def create_source(self, url: str, sync_behavior: str, status: str) -> Source:
        now = self._now()
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = SourceRow(
                url=url,
                sync_behavior=sync_behavior,
                status=status,
                created_at=now,
                updated_at=now,
                last_synced_at=now,
            )
            session.add(row)
            session.flush()
            return _source(row)

    def get_source(self, source_id: int) -> Source | None:
        with Session(self.engine) as session:
            row = session.get(SourceRow, source_id)
            return None if row is None else _source(row)

    def list_sources(self, offset: int, limit: int) -> tuple[list[Source], int]:
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(SourceRow)) or 0
            rows = session.scalars(
                select(SourceRow).order_by(SourceRow.id).offset(offset).limit(limit)
            )
            return [_source(r) for r in rows], total

    def update_source(
        self, source_id: int, url: str, sync_behavior: str, status: str | None
    ) -> Source | None:
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(SourceRow, source_id)
            if row is None:
                return None
            row.url = url
            row.sync_behavior = sync_behavior
            if status is not None:
                row.status = status
            row.updated_at = self._now()
            session.flush()
            return _source(row)

    def delete_source(self, source_id: int) -> bool:
        """Deletes the source and every page of it."""
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(SourceRow, source_id)
            if row is None:
                return False
            # Explicit, so it does not depend on PRAGMA foreign_keys being on.
            session.execute(delete(PageRow).where(PageRow.source_id == source_id))
            session.delete(row)
            return True

    # --- pages -----------------------------------------------------------------------------

    def upsert_page(
        self,
        *,
        source_id: int,
        external_id: str,
        title: str,
        html: str,
        url: str | None,
        locale: str,
        ai_agent_availability: bool,
        ai_copilot_availability: bool,
    ) -> tuple[Page, bool]:
        """Creates the page or updates the one with this (source, external id); True if created.

        Raises SourceNotFound when the source does not exist.
        """
        now = self._now()
        with self._write_lock, Session(self.engine) as session, session.begin():
            source = session.get(SourceRow, source_id)
            if source is None:
                raise SourceNotFound(source_id)
            row = session.scalars(
                select(PageRow).where(
                    PageRow.source_id == source_id, PageRow.external_id == external_id
                )
            ).one_or_none()
            created = row is None
            if row is None:
                row = PageRow(source_id=source_id, external_id=external_id, created_at=now)
                session.add(row)
            row.title = title
            row.html = html
            row.url = url
            row.locale = locale
            row.ai_agent_availability = ai_agent_availability
            row.ai_copilot_availability = ai_copilot_availability
            row.updated_at = now
            row.last_ingested_at = now
            source.last_synced_at = now
            session.flush()
            return _page(row), created

    def update_page(self, page_id: int, fields: dict[str, Any]) -> Page | None:
        """Sets the given columns of one page (the caller has validated them).

        Raises ExternalIdTaken when ``external_id`` would collide within the source.
        """
        now = self._now()
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(PageRow, page_id)
            if row is None:
                return None
            new_external_id = fields.get("external_id")
            if new_external_id is not None and new_external_id != row.external_id:
                clash = session.scalar(
                    select(PageRow.id).where(
                        PageRow.source_id == row.source_id,
                        PageRow.external_id == new_external_id,
                    )
                )
                if clash is not None:
                    raise ExternalIdTaken(new_external_id)
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = now
            row.last_ingested_at = now
            source = session.get(SourceRow, row.source_id)
            if source is not None:
                source.last_synced_at = now
            session.flush()
            return _page(row)

    def get_page(self, page_id: int) -> Page | None:
        with Session(self.engine) as session:
            row = session.get(PageRow, page_id)
            return None if row is None else _page(row)

    def list_pages(self, offset: int, limit: int) -> tuple[list[Page], int]:
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(PageRow)) or 0
            rows = session.scalars(select(PageRow).order_by(PageRow.id).offset(offset).limit(limit))
            return [_page(r) for r in rows], total

    def delete_page(self, page_id: int) -> Page | None:
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(PageRow, page_id)
            if row is None:
                return None
            page = _page(row)
            session.delete(row)
            return page

    # --- for the answerer --------------------------------------------------------------------

    def pages(self) -> list[ContentPage]:
        """The pages Fin (the AI agent) may answer from, oldest first.

        Those with ``ai_agent_availability`` true whose source is active: a deactivated source's
        content is not used, which is what deactivating is for.
        """
        with Session(self.engine) as session:
            rows = session.execute(
                select(PageRow.id, PageRow.title, PageRow.html, PageRow.url)
                .join(SourceRow, SourceRow.id == PageRow.source_id)
                .where(PageRow.ai_agent_availability.is_(True), SourceRow.status == "active")
                .order_by(PageRow.id)
            )
            return [ContentPage(id=r.id, title=r.title, html=r.html, url=r.url) for r in rows]
