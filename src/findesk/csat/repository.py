"""All of CSAT's SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from findesk.csat.models import CsatRating


def get(session: Session, conversation_id: str) -> CsatRating | None:
    return session.get(CsatRating, conversation_id)


def by_token_hash(session: Session, token_hash: str) -> CsatRating | None:
    return session.scalars(select(CsatRating).where(CsatRating.token_hash == token_hash)).first()


def record_score(
    session: Session, conversation_id: str, score: int, comment: str | None, at: datetime
) -> bool:
    """Fill in the rating unless it has one already: one statement, so that two concurrent
    ratings cannot both win. Whether this one did."""
    result = session.execute(
        update(CsatRating)
        .where(CsatRating.conversation_id == conversation_id, CsatRating.score.is_(None))
        .values(score=score, comment=comment, rated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
