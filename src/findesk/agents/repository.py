from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from findesk.agents.models import Agent


def get(session: Session, agent_id: str) -> Agent | None:
    return session.get(Agent, agent_id)


def get_by_email(session: Session, email: str) -> Agent | None:
    return session.scalars(select(Agent).where(Agent.email == email.lower())).first()


def list_active(session: Session) -> Sequence[Agent]:
    return session.scalars(
        select(Agent).where(Agent.active.is_(True)).order_by(Agent.is_bot.desc(), Agent.name)
    ).all()


def list_all(session: Session) -> Sequence[Agent]:
    return session.scalars(select(Agent).order_by(Agent.is_bot.desc(), Agent.name)).all()


def bots(session: Session) -> Sequence[Agent]:
    return session.scalars(
        select(Agent).where(Agent.is_bot.is_(True)).order_by(Agent.created_at)
    ).all()


def get_locked(session: Session, agent_id: str) -> Agent | None:
    """The agent, its row locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    return session.get(Agent, agent_id, with_for_update=True, populate_existing=True)


def active_admin_ids(session: Session, *, lock: bool = False) -> Sequence[str]:
    """Human administrators who can sign in, by id; ``lock`` locks their rows, always in the
    same order, so that two admins deactivating each other take turns."""
    query = (
        select(Agent.id)
        .where(Agent.role == "admin", Agent.active.is_(True), Agent.is_bot.is_(False))
        .order_by(Agent.id)
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).all()
