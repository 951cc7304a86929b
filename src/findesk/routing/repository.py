"""All of routing's SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from findesk.routing.models import RoutingRule


def get(session: Session, rule_id: str) -> RoutingRule | None:
    return session.get(RoutingRule, rule_id)


def list_all(session: Session) -> Sequence[RoutingRule]:
    return session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)).all()


def enabled(session: Session) -> Sequence[RoutingRule]:
    return session.scalars(
        select(RoutingRule)
        .where(RoutingRule.enabled.is_(True))
        .order_by(RoutingRule.position, RoutingRule.id)
    ).all()


def next_position(session: Session) -> int:
    highest = session.scalar(select(func.max(RoutingRule.position)))
    return 0 if highest is None else int(highest) + 1
