"""All of the throttle's SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from findesk.throttle.models import ThrottleCounter


def lock_counters(
    session: Session, keys: dict[str, str], now: datetime
) -> dict[str, ThrottleCounter]:
    """The counters for ``keys`` (key → scope), created when missing, locked for this
    transaction (in key order, so that two attempts never wait on each other in a circle)."""
    rows = [{"key": k, "scope": s, "failures": 0, "updated_at": now} for k, s in keys.items()]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(ThrottleCounter).values(rows).on_conflict_do_nothing())
    found = session.scalars(
        select(ThrottleCounter)
        .where(ThrottleCounter.key.in_(sorted(keys)))
        .order_by(ThrottleCounter.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.key: row for row in found}


def delete_untouched_since(session: Session, before: datetime) -> int:
    result = session.execute(delete(ThrottleCounter).where(ThrottleCounter.updated_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
