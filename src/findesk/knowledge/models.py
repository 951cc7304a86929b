from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
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
        Index("ix_articles_intercom_pending", "intercom_pending"),
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

    # --- Intercom's copy (Articles API article; its translations in other languages) ---
    # The same discipline as the ``fin_*`` columns, for the one Intercom article that carries
    # the article's published languages other than English (``knowledge.articles_publisher``).
    intercom_pending: Mapped[bool] = mapped_column(default=False)
    intercom_article_id: Mapped[str | None] = mapped_column(String(64))
    intercom_hash: Mapped[str | None] = mapped_column(String(64))  # of the last body sent
    intercom_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    intercom_error: Mapped[str | None] = mapped_column(Text)
    intercom_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    intercom_attempts: Mapped[int] = mapped_column(Integer, default=0)
    intercom_next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ArticleTranslation(Base):
    """The article in another language: its own title, description, body and state. The
    article's own columns hold its default language (``Article.locale``, English unless an
    older findesk stored it otherwise); a translation is never in that same language.

    ``intercom_hash`` is the fingerprint of this language's content as last accepted by
    Intercom's Articles API, so that the inbox can say which translations Intercom has as
    they are now."""

    __tablename__ = "article_translations"
    __table_args__ = (
        PrimaryKeyConstraint("article_id", "locale"),
        CheckConstraint("state IN ('draft', 'published', 'archived')", name="state"),
        CheckConstraint("body_format IN ('markdown', 'html')", name="body_format"),
        Index("ix_article_translations_locale_state", "locale", "state"),
    )

    article_id: Mapped[str] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    body_format: Mapped[str] = mapped_column(String(16), default="markdown")
    body_source: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    intercom_hash: Mapped[str | None] = mapped_column(String(64))
    intercom_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ArticleCollection(Base):
    """A group of articles on the help centre's index, in ``position`` order. ``name`` and
    ``description`` are its English ones; other languages in ``CollectionTranslation``."""

    __tablename__ = "article_collections"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.ARTICLE_COLLECTION)
    )
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CollectionTranslation(Base):
    __tablename__ = "article_collection_translations"
    __table_args__ = (PrimaryKeyConstraint("collection_id", "locale"),)

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("article_collections.id", ondelete="CASCADE")
    )
    locale: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")


class CollectionMember(Base):
    """An article's collection: at most one per article (the article is the key)."""

    __tablename__ = "article_collection_members"
    __table_args__ = (Index("ix_article_collection_members_collection", "collection_id"),)

    article_id: Mapped[str] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("article_collections.id", ondelete="CASCADE")
    )


class ContentSource(Base):
    """The content import source findesk created in Fin's Content Library, per API base and
    source URL, so it is created once and reused."""

    __tablename__ = "fin_content_sources"

    api_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
