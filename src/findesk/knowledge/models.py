from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, UTCDateTime
from findesk.kit.timeutil import utcnow

STATES = ("draft", "published", "archived")
BODY_FORMATS = ("markdown", "html")


class Article(Base):
    """A help article. ``body_source`` is what the author wrote (Markdown or HTML);
    ``body_html`` is its rendered, sanitised HTML, the only form ever shown or published.

    The ``fin_*`` columns are the article's state in Fin's Content Library: the external page
    that mirrors it, the fingerprint of what was last sent, and the last error. ``fin_pending``
    marks an article whose page must be written or deleted; the publisher clears it. A deleted
    article that still has a page stays as a tombstone (``deleted_at``) until its page is gone.
    """

    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint("state IN ('draft', 'published', 'archived')", name="state"),
        CheckConstraint("body_format IN ('markdown', 'html')", name="body_format"),
        Index("ix_articles_state_updated", "state", "updated_at"),
        Index("ix_articles_fin_pending", "fin_pending"),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.ARTICLE)
    )
    title: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(120))
    body_format: Mapped[str] = mapped_column(String(16), default="markdown")
    body_source: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    # Given per article (an existing help centre's page); None: findesk's own /help page.
    url: Mapped[str | None] = mapped_column(String(2048))
    locale: Mapped[str] = mapped_column(String(16), default="en")
    state: Mapped[str] = mapped_column(String(16), default="draft")
    author_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # --- Fin's copy (AI Content API external page) ---
    fin_pending: Mapped[bool] = mapped_column(default=False)
    fin_page_id: Mapped[str | None] = mapped_column(String(64))
    fin_hash: Mapped[str | None] = mapped_column(String(64))  # of the last page sent
    fin_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fin_error: Mapped[str | None] = mapped_column(Text)
    fin_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fin_attempts: Mapped[int] = mapped_column(Integer, default=0)
    fin_next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContentSource(Base):
    """The content import source findesk created in Fin's Content Library, per API base and
    source URL, so it is created once and reused."""

    __tablename__ = "fin_content_sources"

    api_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
