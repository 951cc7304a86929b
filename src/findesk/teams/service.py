"""Team actions: teams and their members, agents' presence and capacity, and picking the member
who gets a conversation. Services never commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.audit import service as audit
from findesk.audit.service import AuditActor
from findesk.conversations import history
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit.actor import SYSTEM
from findesk.kit.errors import Conflict, NotFound
from findesk.kit.settings_in_use import current_settings
from findesk.kit.text import clean_text, invalid
from findesk.kit.timeutil import as_utc, utcnow
from findesk.teams import calendar, hours, repository
from findesk.teams.hours import BusinessHours
from findesk.teams.models import Team

UNCHANGED: Any = ...  # update_team: leave the business hours as they are

Presence = Literal["online", "away", "offline"]
PRESENCES: tuple[Presence, ...] = ("online", "away", "offline")
TEAM_NAME_MAX = 255


@dataclass(frozen=True)
class TeamQueue:
    team: Team
    open: int  # open conversations of the team
    waiting: int  # of them, waiting for a person (nobody assigned, not snoozed)


def get_team(session: Session, team_id: str) -> Team:
    team = repository.get(session, team_id)
    if team is None:
        raise NotFound(f"No team with id {team_id!r}.")
    return team


def find_team(session: Session, team_id: str) -> Team | None:
    return repository.get(session, team_id)


def list_teams(session: Session) -> list[Team]:
    return list(repository.list_all(session))


def members(session: Session, teams: list[Team]) -> dict[str, list[str]]:
    return repository.member_ids(session, [t.id for t in teams])


def _name(name: str) -> str:
    cleaned = clean_text(name, field="name", max_length=TEAM_NAME_MAX, label="The name")
    if not cleaned:
        raise invalid("A team needs a name.", field="name")
    return cleaned


def _unique_name(session: Session, name: str, team_id: str | None) -> None:
    same = repository.get_by_name(session, name)
    if same is not None and same.id != team_id:
        raise Conflict(f"A team named {name!r} exists already.")


def _human(session: Session, agent_id: str) -> Agent:
    agent = agent_repository.get(session, agent_id)
    if agent is None or agent.is_bot:
        raise NotFound(f"No human agent with id {agent_id!r}.")
    return agent


def create_team(
    session: Session,
    *,
    name: str,
    assignment_method: str = "round_robin",
    capacity_default: int = 10,
    member_ids: list[str] | None = None,
    timezone: str | None = None,
    business_hours: Mapping[Any, Any] | None = None,
    holidays: list[str] | None = None,
    by: AuditActor | None = None,
) -> Team:
    """A team; ``by`` is who does it, for the audit log (None: findesk itself)."""
    name = _name(name)
    _unique_name(session, name, None)
    team = Team(
        name=name,
        assignment_method=assignment_method,
        capacity_default=capacity_default,
        timezone=calendar.check_timezone(timezone),
        business_hours=calendar.check_weekly(business_hours),
        holidays=calendar.check_holidays(holidays),
    )
    session.add(team)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # created meanwhile under the same name
        raise Conflict(f"A team named {name!r} exists already.") from None
    first_members = list(dict.fromkeys(member_ids or []))
    for agent_id in first_members:
        _add_member(session, team.id, agent_id)
    audit.record(
        session, by, "team.created", "team", team.id, {**_described(team), "members": first_members}
    )
    return team


def _described(team: Team) -> dict[str, object]:
    """What the audit log keeps about a team."""
    return {
        "name": team.name,
        "assignment_method": team.assignment_method,
        "capacity_default": team.capacity_default,
        "timezone": team.timezone,
        "business_hours": team.business_hours,
        "holidays": team.holidays,
    }


def update_team(
    session: Session,
    team_id: str,
    *,
    name: str | None = None,
    assignment_method: str | None = None,
    capacity_default: int | None = None,
    timezone: str | None = UNCHANGED,
    business_hours: Mapping[Any, Any] | None = UNCHANGED,
    holidays: list[str] | None = UNCHANGED,
    by: AuditActor | None = None,
) -> Team:
    """Change what is given; for the business hours, None is a value (UTC, always open, no
    holidays) and ``UNCHANGED`` leaves them."""
    team = get_team(session, team_id)
    before = _described(team)
    if timezone is not UNCHANGED:
        team.timezone = calendar.check_timezone(timezone)
    if business_hours is not UNCHANGED:
        team.business_hours = calendar.check_weekly(business_hours)
    if holidays is not UNCHANGED:
        team.holidays = calendar.check_holidays(holidays)
    if name is not None:
        name = _name(name)
        _unique_name(session, name, team.id)
        team.name = name
    if assignment_method is not None:
        team.assignment_method = assignment_method
    if capacity_default is not None:
        team.capacity_default = capacity_default
    team.updated_at = utcnow()
    session.flush()
    audit.record_changes(
        session, by, "team.updated", "team", team.id, team.name, before, _described(team)
    )
    return team


def calendar_of(team: Team) -> BusinessHours:
    return calendar.business_hours(team.timezone, team.business_hours, team.holidays)


def calendar_for(session: Session, team_id: str | None) -> BusinessHours:
    """The team's business hours; ``hours.ALWAYS`` for no team (or one gone) or no hours set."""
    team = repository.get(session, team_id) if team_id is not None else None
    return calendar_of(team) if team is not None else hours.ALWAYS


def delete_team(session: Session, team_id: str, *, by: AuditActor | None = None) -> None:
    team = get_team(session, team_id)
    audit.record(session, by, "team.deleted", "team", team.id, _described(team))
    repository.delete_team(session, team)


def _add_member(session: Session, team_id: str, agent_id: str) -> Agent | None:
    """The agent, if it was not a member already."""
    agent = _human(session, agent_id)
    if repository.is_member(session, team_id, agent_id):
        return None
    repository.add_member(session, team_id, agent_id)
    return agent


def add_member(
    session: Session, team_id: str, agent_id: str, *, by: AuditActor | None = None
) -> None:
    team = get_team(session, team_id)
    added = _add_member(session, team_id, agent_id)
    if added is not None:
        detail = {"name": team.name, "agent_id": added.id, "agent_email": added.email}
        audit.record(session, by, "team.member_added", "team", team.id, detail)


def remove_member(
    session: Session, team_id: str, agent_id: str, *, by: AuditActor | None = None
) -> None:
    team = get_team(session, team_id)
    if not repository.remove_member(session, team_id, agent_id):
        raise NotFound(f"Agent {agent_id!r} is not a member of this team.")
    agent = agent_repository.get(session, agent_id)
    detail = {"name": team.name, "agent_id": agent_id, "agent_email": agent and agent.email}
    audit.record(session, by, "team.member_removed", "team", team.id, detail)


def team_queues(session: Session, agent_id: str) -> list[TeamQueue]:
    """The teams the agent belongs to, each with its counts: the inbox's team queues."""
    team_ids = repository.team_ids_of(session, agent_id)
    counts = repository.open_counts(session, team_ids)
    teams = [repository.get(session, team_id) for team_id in team_ids]
    return sorted(
        (TeamQueue(t, *counts[t.id]) for t in teams if t is not None), key=lambda q: q.team.name
    )


# --- presence and capacity -----------------------------------------------------------------


def effective_presence(agent: Agent, now: datetime | None = None) -> Presence:
    """The presence routing goes by: an agent online but not seen for
    ``presence_away_minutes`` is away."""
    if agent.presence != "online":
        return "away" if agent.presence == "away" else "offline"
    seen = agent.last_seen_at
    away_after = timedelta(minutes=current_settings().presence_away_minutes)
    if seen is None or as_utc(seen) < (now or utcnow()) - away_after:
        return "away"
    return "online"


def get_agent(session: Session, agent_id: str) -> Agent:
    agent = agent_repository.get(session, agent_id)
    if agent is None:
        raise NotFound(f"No agent with id {agent_id!r}.")
    return agent


def set_presence(session: Session, agent_id: str, presence: Presence) -> Agent:
    agent = agent_repository.get(session, agent_id)
    if agent is None or not agent.active:
        raise NotFound(f"No active agent with id {agent_id!r}.")
    now = utcnow()
    agent.presence = presence
    agent.last_seen_at = now
    agent.updated_at = now
    session.flush()
    return agent


def seen(session: Session, agent_id: str) -> None:
    """The agent is at the inbox (its heartbeat): an online agent stays online."""
    agent = agent_repository.get(session, agent_id)
    if agent is not None and agent.presence == "online":
        agent.last_seen_at = utcnow()


def signed_in(session: Session, agent_id: str) -> None:
    """Signing in to the inbox makes an offline agent online (as the messengers' inboxes do);
    one who set themselves away stays away."""
    agent = agent_repository.get(session, agent_id)
    if agent is not None and agent.presence == "offline":
        set_presence(session, agent_id, "online")


def signed_out(session: Session, agent_id: str) -> None:
    agent = agent_repository.get(session, agent_id)
    if agent is not None and agent.presence != "offline":
        agent.presence = "offline"
        agent.updated_at = utcnow()


def set_capacity(
    session: Session, agent_id: str, capacity: int | None, *, by: AuditActor | None = None
) -> Agent:
    agent = _human(session, agent_id)
    if agent.capacity != capacity:
        detail = {"email": agent.email, "capacity": capacity, "was": agent.capacity}
        audit.record(session, by, "agent.capacity_set", "agent", agent.id, detail)
    agent.capacity = capacity
    agent.updated_at = utcnow()
    session.flush()
    return agent


def capacity_of(agent: Agent, team: Team) -> int:
    return agent.capacity if agent.capacity is not None else team.capacity_default


def pick_member(session: Session, team_id: str) -> Agent | None:
    """The member who gets the team's next conversation: among its online members under
    capacity, the next after the last one given one (round robin) or the one with the fewest
    open conversations, ties in round-robin order (least busy). None: nobody can take it now
    (it stays in the team queue).

    On PostgreSQL the team's row is locked first, then its members' (in id order), and only
    then are their loads counted: a concurrent routing to the same team or agent waits until
    this transaction commits, and then counts the conversation given here."""
    team = repository.get_locked(session, team_id)
    if team is None:
        return None
    now = utcnow()
    candidates = [
        a
        for a in repository.members_locked(session, team.id)
        if effective_presence(a, now) == "online"
    ]
    loads = repository.open_loads(session, [a.id for a in candidates])
    free = [a for a in candidates if loads[a.id] < capacity_of(a, team)]
    if not free:
        return None
    cursor = team.last_assigned_agent_id or ""
    # Round-robin order: the members after the cursor, then from the start.
    ordered = [a for a in free if a.id > cursor] + [a for a in free if a.id <= cursor]
    if team.assignment_method == "least_busy":
        chosen = min(ordered, key=lambda a: loads[a.id])  # min keeps the first of equals
    else:
        chosen = ordered[0]
    team.last_assigned_agent_id = chosen.id
    return chosen


def give_to_team(
    session: Session, conversation: Conversation, team: Team, because: dict[str, Any]
) -> Agent | None:
    """Put the conversation in ``team``'s queue (a ``team`` history entry saying why, with the
    team's name as it is now) and give it to the member ``pick_member`` chooses, if anyone can
    take it; that member, or None. For routing and for SLA escalations, in their transaction."""
    if conversation.team_id != team.id:
        history.record(
            session,
            conversation.id,
            "team",
            SYSTEM,
            from_value=conversation.team_id,
            to_value=team.id,
            detail={**because, "team_name": team.name},
        )
        conversation.team_id = team.id
        conversations.activity(session, conversation, "team")
    agent = pick_member(session, team.id)
    if agent is not None and agent.id != conversation.assignee_id:
        conversations.route_to(session, conversation, agent, SYSTEM)
    return agent
