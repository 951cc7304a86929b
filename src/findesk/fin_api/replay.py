"""Refusing a replayed signed call: all of the seen request signatures' SQL.

A signature is good for the whole tolerance window, so a captured call could be sent again
within it (a replayed "resolve" undoing a later reopen). Each accepted signature is recorded
once, in its own short transaction, in a table every process shares; a second use of it hits
the primary key and is refused. Rows outlive the window by a grace for other processes' clocks,
then are purged a bounded batch at a time by the calls that record new ones.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from findesk.fin_api.models import SeenRequestSignature
from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow

CLOCK_GRACE = timedelta(seconds=60)
PURGE_BATCH = 100


def digest_hash(digest: bytes) -> str:
    return hashlib.sha256(digest).hexdigest()


def expiry(sent_at: int, tolerance_seconds: int) -> datetime:
    """When a signature made at ``sent_at`` can no longer pass the timestamp check anywhere."""
    return datetime.fromtimestamp(sent_at + tolerance_seconds, UTC) + CLOCK_GRACE


def remember(db: Database, digest: bytes, expires_at: datetime) -> bool:
    """Record an accepted signature's digest; False if it was recorded before (a replay)."""
    try:
        with db.transaction() as session:
            session.add(
                SeenRequestSignature(digest_hash=digest_hash(digest), expires_at=expires_at)
            )
            session.flush()
            delete_expired(session, utcnow(), skip_locked=not db.is_sqlite)
    except IntegrityError:
        return False
    return True


def delete_expired(
    session: Session, now: datetime, *, limit: int = PURGE_BATCH, skip_locked: bool = False
) -> int:
    """Delete up to ``limit`` expired rows. ``skip_locked`` (PostgreSQL) leaves rows another
    process is deleting to it, so that concurrent purges neither wait nor deadlock."""
    expired = (
        select(SeenRequestSignature.digest_hash)
        .where(SeenRequestSignature.expires_at < now)
        .order_by(SeenRequestSignature.expires_at)
        .limit(limit)
    )
    if skip_locked:
        expired = expired.with_for_update(skip_locked=True)
    result = session.execute(
        delete(SeenRequestSignature).where(SeenRequestSignature.digest_hash.in_(expired)),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)
