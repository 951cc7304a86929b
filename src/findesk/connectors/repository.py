"""All SQL of the connector sync."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from findesk.connectors.models import IntercomConnector, IntercomConnectorExecution


def all_connectors(session: Session) -> Sequence[IntercomConnector]:
    return session.scalars(select(IntercomConnector).order_by(IntercomConnector.key)).all()


def get(session: Session, key: str) -> IntercomConnector | None:
    return session.get(IntercomConnector, key)


def get_for_update(session: Session, key: str) -> IntercomConnector | None:
    return session.scalars(
        select(IntercomConnector).where(IntercomConnector.key == key).with_for_update()
    ).one_or_none()


def known_result_ids(session: Session, key: str, result_ids: Sequence[str]) -> set[str]:
    if not result_ids:
        return set()
    rows = session.scalars(
        select(IntercomConnectorExecution.result_id).where(
            IntercomConnectorExecution.key == key,
            IntercomConnectorExecution.result_id.in_(result_ids),
        )
    )
    return set(rows)


def trim_history(session: Session, key: str, keep: int) -> None:
    """Keep the ``keep`` most recent execution results of a connector."""
    kept = (
        select(IntercomConnectorExecution.result_id)
        .where(IntercomConnectorExecution.key == key)
        .order_by(
            IntercomConnectorExecution.executed_at.desc(),
            IntercomConnectorExecution.result_id.desc(),
        )
        .limit(keep)
    )
    session.execute(
        delete(IntercomConnectorExecution).where(
            IntercomConnectorExecution.key == key,
            IntercomConnectorExecution.result_id.not_in(kept.scalar_subquery()),
        )
    )


def recent_executions(
    session: Session, key: str, limit: int = 50
) -> Sequence[IntercomConnectorExecution]:
    return session.scalars(
        select(IntercomConnectorExecution)
        .where(IntercomConnectorExecution.key == key)
        .order_by(IntercomConnectorExecution.executed_at.desc())
        .limit(limit)
    ).all()
