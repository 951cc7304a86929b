"""All of the idempotency keys' SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from findesk.idempotency.models import IdempotencyKey


def get(session: Session, agent_id: str, key: str) -> IdempotencyKey | None:
    return session.get(IdempotencyKey, (agent_id, key), populate_existing=True)


def add(session: Session, row: IdempotencyKey) -> None:
    session.add(row)


def remove(session: Session, row: IdempotencyKey) -> None:
    session.delete(row)


def delete_created_before(session: Session, before: datetime) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
