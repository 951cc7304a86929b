"""All article SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from findesk.knowledge.models import Article, ContentSource


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
        pattern = f"%{query.strip()}%"
        stmt = stmt.where(or_(Article.title.ilike(pattern), Article.body_source.ilike(pattern)))
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
