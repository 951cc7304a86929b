"""All of the audit log's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from findesk.audit.models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What to list; every field narrows. ``actor`` is "cli", "system", an agent id or email."""

    action: str | None = None
    actor: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def add(session: Session, entry: AuditEntry) -> None:
    session.add(entry)


def listing(
    session: Session, f: AuditFilter, *, before: int | None, limit: int
) -> Sequence[AuditEntry]:
    """Newest first; ``before`` is the keyset cursor (the id of the last entry already seen)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    if f.action:
        query = query.where(AuditEntry.action == f.action)
    if f.actor:
        if f.actor in ("cli", "system"):
            query = query.where(AuditEntry.actor_kind == f.actor)
        else:
            query = query.where(
                AuditEntry.actor_kind == "agent",
                or_(
                    AuditEntry.actor_agent_id == f.actor,
                    func.lower(AuditEntry.actor_label) == f.actor.lower(),
                ),
            )
    if f.target_id:
        query = query.where(AuditEntry.target_id == f.target_id)
    if f.since is not None:
        query = query.where(AuditEntry.at >= f.since)
    if f.until is not None:
        query = query.where(AuditEntry.at < f.until)
    return session.scalars(query).all()


def agent_actors(session: Session) -> Sequence[tuple[str, str]]:
    """(agent id, the newest label it acted under) of every agent that appears as an actor."""
    newest = (
        select(AuditEntry.actor_agent_id, func.max(AuditEntry.id).label("last_id"))
        .where(AuditEntry.actor_agent_id.is_not(None))
        .group_by(AuditEntry.actor_agent_id)
        .subquery()
    )
    rows = session.execute(
        select(AuditEntry.actor_agent_id, AuditEntry.actor_label)
        .join(newest, AuditEntry.id == newest.c.last_id)
        .order_by(AuditEntry.actor_label)
    ).all()
    return [(str(agent_id), str(label)) for agent_id, label in rows]
