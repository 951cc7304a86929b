"""All alerts SQL: webhook endpoints and agents' email preferences."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.alerts.models import AlertPreference, WebhookEndpoint
from findesk.teams.models import TeamMember


def endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    return session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)).all()


def active_endpoints(session: Session) -> Sequence[WebhookEndpoint]:
    return session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.active.is_(True))
        .order_by(WebhookEndpoint.created_at)
    ).all()


def endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint | None:
    return session.get(WebhookEndpoint, endpoint_id)


def preference(session: Session, agent_id: str) -> AlertPreference | None:
    return session.get(AlertPreference, agent_id)


def agents_wanting_handovers(
    session: Session, team_id: str | None
) -> Sequence[tuple[Agent, AlertPreference]]:
    """Active human agents who asked for an email on every handover: the team's members when
    the handover went to a team's queue, else everyone who asked."""
    query = (
        select(Agent, AlertPreference)
        .join(AlertPreference, AlertPreference.agent_id == Agent.id)
        .where(
            AlertPreference.email_handover.is_(True),
            Agent.active.is_(True),
            Agent.is_bot.is_(False),
        )
        .order_by(Agent.id)
    )
    if team_id is not None:
        query = query.join(
            TeamMember, (TeamMember.agent_id == Agent.id) & (TeamMember.team_id == team_id)
        )
    return [(agent, pref) for agent, pref in session.execute(query).all()]
