"""All of the teams' SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, ConversationEvent
from findesk.teams.models import Team, TeamMember


def get(session: Session, team_id: str) -> Team | None:
    return session.get(Team, team_id)


def get_locked(session: Session, team_id: str) -> Team | None:
    """The team, its row locked until the transaction ends (PostgreSQL; SQLite has one
    writer): routing's turn to pick one of its members."""
    return session.get(Team, team_id, with_for_update=True, populate_existing=True)


def get_by_name(session: Session, name: str) -> Team | None:
    return session.scalars(select(Team).where(Team.name == name)).first()


def list_all(session: Session) -> Sequence[Team]:
    return session.scalars(select(Team).order_by(Team.name)).all()


def member_ids(session: Session, team_ids: Collection[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {team_id: [] for team_id in team_ids}
    if not team_ids:
        return found
    rows = session.execute(
        select(TeamMember.team_id, TeamMember.agent_id)
        .where(TeamMember.team_id.in_(list(team_ids)))
        .order_by(TeamMember.team_id, TeamMember.agent_id)
    )
    for team_id, agent_id in rows:
        found[team_id].append(agent_id)
    return found


def is_member(session: Session, team_id: str, agent_id: str) -> bool:
    return session.get(TeamMember, (team_id, agent_id)) is not None


def add_member(session: Session, team_id: str, agent_id: str) -> None:
    session.add(TeamMember(team_id=team_id, agent_id=agent_id))
    session.flush()


def remove_member(session: Session, team_id: str, agent_id: str) -> bool:
    result = session.execute(
        delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.agent_id == agent_id)
    )
    return bool(getattr(result, "rowcount", 0))


def delete_team(session: Session, team: Team) -> None:
    """The team, its memberships, and its name on its conversations (they keep their owner)."""
    session.execute(
        update(Conversation).where(Conversation.team_id == team.id).values(team_id=None)
    )
    session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    session.delete(team)
    session.flush()


def team_ids_of(session: Session, agent_id: str) -> list[str]:
    return list(
        session.scalars(
            select(TeamMember.team_id)
            .where(TeamMember.agent_id == agent_id)
            .order_by(TeamMember.team_id)
        )
    )


def members_locked(session: Session, team_id: str) -> Sequence[Agent]:
    """The team's active human members, by id, their rows locked (``FOR NO KEY UPDATE``, which
    lets conversations and messages keep referring to them meanwhile): an agent in two teams
    is picked by one routing transaction at a time."""
    return session.scalars(
        select(Agent)
        .join(TeamMember, TeamMember.agent_id == Agent.id)
        .where(TeamMember.team_id == team_id, Agent.active.is_(True), Agent.is_bot.is_(False))
        .order_by(Agent.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).all()


def open_loads(session: Session, agent_ids: Collection[str]) -> dict[str, int]:
    """Open conversations assigned to each of these agents now."""
    if not agent_ids:
        return {}
    rows = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.status == "open", Conversation.assignee_id.in_(list(agent_ids)))
        .group_by(Conversation.assignee_id)
    )
    loads = dict.fromkeys(agent_ids, 0)
    for agent_id, count in rows:
        if agent_id is not None:
            loads[agent_id] = int(count)
    return loads


def open_counts(session: Session, team_ids: Collection[str]) -> dict[str, tuple[int, int]]:
    """Per team: its open conversations, and those of them waiting for a person (nobody
    assigned, not snoozed): the team queues' counts."""
    counts = dict.fromkeys(team_ids, (0, 0))
    if not team_ids:
        return counts
    waiting = func.sum(
        case(
            (Conversation.assignee_id.is_(None) & Conversation.snoozed_until.is_(None), 1),
            else_=0,
        )
    )
    rows = session.execute(
        select(Conversation.team_id, func.count(), waiting)
        .where(Conversation.status == "open", Conversation.team_id.in_(list(team_ids)))
        .group_by(Conversation.team_id)
    )
    for team_id, total, waits in rows:
        if team_id is not None:
            counts[team_id] = (int(total), int(waits or 0))
    return counts


def first_takes(
    session: Session, team_id: str, since: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """(when, detail) of the ownership changes since ``since`` of the team's conversations that
    may be a first person taking one after Fin's handover (their detail says
    ``seconds_after_handover``)."""
    rows = session.execute(
        select(ConversationEvent.at, ConversationEvent.detail)
        .join(Conversation, Conversation.id == ConversationEvent.conversation_id)
        .where(
            Conversation.team_id == team_id,
            ConversationEvent.kind.in_(("take_over", "assigned")),
            ConversationEvent.at >= since,
        )
    )
    return [(at, detail or {}) for at, detail in rows]
