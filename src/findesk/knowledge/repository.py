"""All article SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from findesk.knowledge.models import (
    Article,
    ArticleCollection,
    ArticleTranslation,
    CollectionMember,
    CollectionTranslation,
    ContentSource,
)


def get(session: Session, article_id: str) -> Article | None:
    article = session.get(Article, article_id)
    return article if article is not None and article.deleted_at is None else None


def get_any(session: Session, article_id: str) -> Article | None:
    """Deleted ones (tombstones waiting for their Fin page to go) included."""
    return session.get(Article, article_id)


def get_published_by_slug(session: Session, slug: str) -> Article | None:
    return session.scalars(
        select(Article).where(
            Article.slug == slug, Article.state == "published", Article.deleted_at.is_(None)
        )
    ).first()


def get_by_slug(session: Session, slug: str) -> Article | None:
    """In any state; deleted ones excluded."""
    return session.scalars(
        select(Article).where(Article.slug == slug, Article.deleted_at.is_(None)).limit(1)
    ).first()


def slug_taken(session: Session, slug: str, except_id: str | None = None) -> bool:
    query = select(Article.id).where(Article.slug == slug, Article.deleted_at.is_(None))
    if except_id is not None:
        query = query.where(Article.id != except_id)
    return session.scalar(query.limit(1)) is not None


def search(
    session: Session,
    *,
    query: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> Sequence[Article]:
    """Newest edit first; ``query`` matches the title or the written body."""
    stmt = select(Article).where(Article.deleted_at.is_(None))
    if state is not None:
        stmt = stmt.where(Article.state == state)
    if query:
        # The words as typed: % and _ are not wildcards here.
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                Article.title.ilike(pattern, escape="\\"),
                Article.body_source.ilike(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(Article.updated_at.desc(), Article.id).limit(limit).offset(offset)
    return session.scalars(stmt).all()


def count_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Article.state, func.count())
        .where(Article.deleted_at.is_(None))
        .group_by(Article.state)
    ).all()
    return {state: count for state, count in rows}


def pending_ids(session: Session, now: datetime, limit: int) -> list[str]:
    """Articles whose Fin page must be written or deleted, and whose retry time has come."""
    rows = session.scalars(
        select(Article.id)
        .where(
            Article.fin_pending.is_(True),
            or_(Article.fin_next_attempt_at.is_(None), Article.fin_next_attempt_at <= now),
        )
        .order_by(Article.updated_at, Article.id)
        .limit(limit)
    )
    return list(rows)


def get_source(session: Session, api_base: str, url: str) -> ContentSource | None:
    return session.get(ContentSource, (api_base, url))


def sources(session: Session) -> Sequence[ContentSource]:
    """Every content import source findesk has used, at any API address; newest first."""
    return session.scalars(
        select(ContentSource).order_by(ContentSource.created_at.desc(), ContentSource.url)
    ).all()


def drop_sources(session: Session, api_base: str, keep_url: str) -> None:
    """Forget this API address's sources other than the one at ``keep_url``."""
    session.execute(
        delete(ContentSource).where(
            ContentSource.api_base == api_base, ContentSource.url != keep_url
        )
    )


def get_for_update(session: Session, article_id: str) -> Article | None:
    """Deleted ones included; the row locked on PostgreSQL until the transaction ends."""
    return session.get(Article, article_id, with_for_update=True)


def all_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Article.id).order_by(Article.updated_at, Article.id)))


def published(session: Session) -> Sequence[Article]:
    return session.scalars(
        select(Article).where(Article.state == "published", Article.deleted_at.is_(None))
    ).all()


def earliest_retry(session: Session) -> datetime | None:
    """When the first failed publish is due again."""
    return session.scalar(
        select(func.min(Article.fin_next_attempt_at)).where(Article.fin_pending.is_(True))
    )


def unreported_non_english_ids(session: Session, limit: int) -> list[str]:
    """Published articles in another language not yet reported (or edited since): articles
    are marked pending only when Fin should have their page, so these are looked for."""
    language = func.lower(Article.locale)
    return list(
        session.scalars(
            select(Article.id)
            .where(
                Article.state == "published",
                Article.deleted_at.is_(None),
                ~or_(language == "en", language.like("en-%")),
                or_(Article.fin_error_at.is_(None), Article.fin_error_at < Article.updated_at),
            )
            .order_by(Article.updated_at, Article.id)
            .limit(limit)
        )
    )


def forget_pages(session: Session) -> None:
    """Every page is gone (its source was deleted): each article that had one is re-queued."""
    session.execute(
        update(Article)
        .where(Article.fin_page_id.is_not(None))
        .values(
            fin_page_id=None,
            fin_hash=None,
            fin_pending=True,
            fin_attempts=0,
            fin_next_attempt_at=None,
        )
    )


def requeue_pages(session: Session) -> None:
    """Every article with a page is looked at again (its page is kept: an unchanged one costs
    no request), e.g. when the public URLs its page gives have changed."""
    session.execute(
        update(Article)
        .where(Article.fin_page_id.is_not(None))
        .values(fin_pending=True, fin_attempts=0, fin_next_attempt_at=None)
    )


# --- translations and the Articles API phase ---------------------------------------------------


def get_translation(session: Session, article_id: str, locale: str) -> ArticleTranslation | None:
    return session.get(ArticleTranslation, (article_id, locale))


def translations(session: Session, article_id: str) -> Sequence[ArticleTranslation]:
    return session.scalars(
        select(ArticleTranslation)
        .where(ArticleTranslation.article_id == article_id)
        .order_by(ArticleTranslation.locale)
    ).all()


def intercom_pending_ids(session: Session, now: datetime, limit: int) -> list[str]:
    """Articles whose Intercom article must be looked at, and whose retry time has come."""
    rows = session.scalars(
        select(Article.id)
        .where(
            Article.intercom_pending.is_(True),
            or_(
                Article.intercom_next_attempt_at.is_(None),
                Article.intercom_next_attempt_at <= now,
            ),
        )
        .order_by(Article.updated_at, Article.id)
        .limit(limit)
    )
    return list(rows)


def intercom_error_ids(session: Session, error: str, limit: int) -> list[str]:
    """Articles whose last Intercom attempt ended with exactly ``error``."""
    return list(
        session.scalars(
            select(Article.id)
            .where(Article.intercom_error == error)
            .order_by(Article.updated_at, Article.id)
            .limit(limit)
        )
    )


def earliest_intercom_retry(session: Session) -> datetime | None:
    return session.scalar(
        select(func.min(Article.intercom_next_attempt_at)).where(Article.intercom_pending.is_(True))
    )


def published_translation(
    session: Session, slug: str, locale: str
) -> tuple[Article, ArticleTranslation] | None:
    row = session.execute(
        select(Article, ArticleTranslation)
        .join(ArticleTranslation, ArticleTranslation.article_id == Article.id)
        .where(
            Article.slug == slug,
            Article.deleted_at.is_(None),
            Article.state != "archived",
            ArticleTranslation.locale == locale,
            ArticleTranslation.state == "published",
        )
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


def published_translations_in(
    session: Session, locale: str, *, query: str | None, limit: int, offset: int
) -> Sequence[tuple[Article, ArticleTranslation]]:
    stmt = (
        select(Article, ArticleTranslation)
        .join(ArticleTranslation, ArticleTranslation.article_id == Article.id)
        .where(
            Article.deleted_at.is_(None),
            Article.state != "archived",
            ArticleTranslation.locale == locale,
            ArticleTranslation.state == "published",
        )
    )
    if query:
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                ArticleTranslation.title.ilike(pattern, escape="\\"),
                ArticleTranslation.body_source.ilike(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(ArticleTranslation.updated_at.desc(), Article.id).limit(limit)
    return [(a, t) for a, t in session.execute(stmt.offset(offset)).all()]


def published_in_own_locale(
    session: Session, tags: list[str], *, query: str | None, limit: int, offset: int
) -> Sequence[Article]:
    """Published articles whose own language tag is one of ``tags`` (compared lower-case)."""
    stmt = select(Article).where(
        Article.state == "published",
        Article.deleted_at.is_(None),
        func.lower(Article.locale).in_([t.lower() for t in tags]),
    )
    if query:
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                Article.title.ilike(pattern, escape="\\"),
                Article.body_source.ilike(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(Article.updated_at.desc(), Article.id).limit(limit).offset(offset)
    return session.scalars(stmt).all()


def published_translation_locales(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(ArticleTranslation.locale)
            .join(Article, ArticleTranslation.article_id == Article.id)
            .where(
                ArticleTranslation.state == "published",
                Article.deleted_at.is_(None),
                Article.state != "archived",
            )
            .distinct()
        )
    )


def published_own_locales(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(Article.locale)
            .where(Article.state == "published", Article.deleted_at.is_(None))
            .distinct()
        )
    )


# --- collections -------------------------------------------------------------------------------


def collections(session: Session) -> Sequence[ArticleCollection]:
    """In order: position, then name."""
    return session.scalars(
        select(ArticleCollection).order_by(
            ArticleCollection.position, ArticleCollection.name, ArticleCollection.id
        )
    ).all()


def get_collection(session: Session, collection_id: str) -> ArticleCollection | None:
    return session.get(ArticleCollection, collection_id)


def collection_names(session: Session, collection_id: str) -> Sequence[CollectionTranslation]:
    return session.scalars(
        select(CollectionTranslation)
        .where(CollectionTranslation.collection_id == collection_id)
        .order_by(CollectionTranslation.locale)
    ).all()


def collection_names_in(session: Session, locale: str) -> Sequence[CollectionTranslation]:
    return session.scalars(
        select(CollectionTranslation).where(CollectionTranslation.locale == locale)
    ).all()


def members(session: Session, article_ids: Sequence[str]) -> dict[str, str]:
    if not article_ids:
        return {}
    rows = session.execute(
        select(CollectionMember.article_id, CollectionMember.collection_id).where(
            CollectionMember.article_id.in_(list(article_ids))
        )
    ).all()
    return {a: c for a, c in rows}


def all_members(session: Session) -> dict[str, str]:
    rows = session.execute(
        select(CollectionMember.article_id, CollectionMember.collection_id)
        .join(Article, Article.id == CollectionMember.article_id)
        .where(Article.deleted_at.is_(None))
    ).all()
    return {a: c for a, c in rows}


def forget_collection(session: Session, collection_id: str) -> None:
    """Its members leave it and its names go (before the collection itself is deleted)."""
    session.execute(delete(CollectionMember).where(CollectionMember.collection_id == collection_id))
    session.execute(
        delete(CollectionTranslation).where(CollectionTranslation.collection_id == collection_id)
    )
