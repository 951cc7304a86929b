"""``/api/v1/teams``, team queues, and agents' presence and capacity. Thin: authenticate, call
the domain, shape. Reading is for every agent; changing teams and capacities, for admins."""

from __future__ import annotations

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from findesk.agent_api.security import agent_api_router, current_agent
from findesk.agents.models import Agent
from findesk.audit.service import AuditActor
from findesk.kit.errors import Forbidden
from findesk.kit.http import client_address, db_of
from findesk.kit.timeutil import utcnow
from findesk.teams import (
    availability,  # noqa: F401  (registers what Fin is told at handover)
    hours,
    service,
)
from findesk.teams import schemas as s
from findesk.teams.models import Team

router = agent_api_router(tag="Teams", not_found="No such team or agent.")
ADMIN_ONLY: dict[int | str, dict[str, str]] = {
    403: {"description": "The calling agent is not an administrator."}
}


def require_admin(request: Request) -> Agent:
    me = current_agent(request)
    if me.role != "admin":
        raise Forbidden("Only administrators may do this.")
    return me


# On a route with a body: the 403 comes before the body is validated, so an agent who is not an
# admin learns nothing from a 422 about what an admin may send.
ADMIN_FIRST = [Depends(require_admin)]


def admin_actor(request: Request) -> AuditActor:
    """The calling admin (403 otherwise) and the address they came from, for the audit log."""
    admin = require_admin(request)
    return AuditActor.for_agent(admin, client_address(request))


def team_view(session: Session, team: Team) -> s.TeamView:
    member_ids = service.members(session, [team])[team.id]
    calendar, now = service.calendar_of(team), utcnow()
    open_now = hours.is_open(calendar, now)
    return s.TeamView(
        id=team.id,
        name=team.name,
        assignment_method=team.assignment_method,
        capacity_default=team.capacity_default,
        member_ids=member_ids,
        timezone=team.timezone,
        business_hours=team.business_hours,
        holidays=list(team.holidays or []),
        open_now=open_now,
        opens_at=None if open_now else hours.next_open(calendar, now),
        created_at=team.created_at,
        updated_at=team.updated_at,
    )


def presence_view(agent: Agent) -> s.PresenceView:
    return s.PresenceView(
        agent_id=agent.id,
        presence=agent.presence,
        effective=service.effective_presence(agent),
        capacity=agent.capacity,
        last_seen_at=agent.last_seen_at,
    )


@router.get("/teams", response_model=list[s.TeamView])
def list_teams(request: Request) -> list[s.TeamView]:
    current_agent(request)
    with db_of(request).read_session() as session:
        return [team_view(session, t) for t in service.list_teams(session)]


@router.post(
    "/teams",
    response_model=s.TeamView,
    status_code=201,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def create_team(request: Request, response: Response, body: s.TeamIn) -> s.TeamView:
    """A team (409 if the name is taken), with its first members."""
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        team = service.create_team(
            session,
            name=body.name,
            assignment_method=body.assignment_method,
            capacity_default=body.capacity_default,
            member_ids=body.member_ids,
            timezone=body.timezone,
            business_hours=body.business_hours,
            holidays=body.holidays,
            by=by,
        )
        view = team_view(session, team)
    response.headers["Location"] = f"/api/v1/teams/{view.id}"
    return view


@router.get("/teams/{team_id}", response_model=s.TeamView)
def get_team(request: Request, team_id: str) -> s.TeamView:
    current_agent(request)
    with db_of(request).read_session() as session:
        return team_view(session, service.get_team(session, team_id))


@router.patch(
    "/teams/{team_id}", response_model=s.TeamView, responses=ADMIN_ONLY, dependencies=ADMIN_FIRST
)
def update_team(request: Request, team_id: str, body: s.TeamPatch) -> s.TeamView:
    """Change what is given; ``timezone``, ``business_hours`` and ``holidays`` take null (UTC,
    always open, none)."""
    by = admin_actor(request)
    given = body.model_fields_set
    with db_of(request).transaction() as session:
        team = service.update_team(
            session,
            team_id,
            name=body.name,
            assignment_method=body.assignment_method,
            capacity_default=body.capacity_default,
            timezone=body.timezone if "timezone" in given else service.UNCHANGED,
            business_hours=(
                body.business_hours if "business_hours" in given else service.UNCHANGED
            ),
            holidays=body.holidays if "holidays" in given else service.UNCHANGED,
            by=by,
        )
        return team_view(session, team)


@router.delete("/teams/{team_id}", status_code=204, responses=ADMIN_ONLY)
def delete_team(request: Request, team_id: str) -> Response:
    """The team goes; its conversations leave its queue and keep their owner."""
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        service.delete_team(session, team_id, by=by)
    return Response(status_code=204)


@router.put("/teams/{team_id}/members/{agent_id}", response_model=s.TeamView, responses=ADMIN_ONLY)
def add_member(request: Request, team_id: str, agent_id: str) -> s.TeamView:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        service.add_member(session, team_id, agent_id, by=by)
        return team_view(session, service.get_team(session, team_id))


@router.delete(
    "/teams/{team_id}/members/{agent_id}", response_model=s.TeamView, responses=ADMIN_ONLY
)
def remove_member(request: Request, team_id: str, agent_id: str) -> s.TeamView:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        service.remove_member(session, team_id, agent_id, by=by)
        return team_view(session, service.get_team(session, team_id))


@router.get("/team-queues", response_model=list[s.TeamQueueView])
def team_queues(request: Request) -> list[s.TeamQueueView]:
    """The caller's teams, each with its open and waiting conversations."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        return [
            s.TeamQueueView(team_id=q.team.id, name=q.team.name, open=q.open, waiting=q.waiting)
            for q in service.team_queues(session, me.id)
        ]


@router.get("/me/presence", response_model=s.PresenceView)
def get_presence(request: Request) -> s.PresenceView:
    me = current_agent(request)
    with db_of(request).read_session() as session:
        return presence_view(service.get_agent(session, me.id))


@router.put("/me/presence", response_model=s.PresenceView)
def set_presence(request: Request, body: s.PresenceSet) -> s.PresenceView:
    """Online (routing may give you conversations), away or offline. Setting it also counts as
    being seen: an online agent not seen for ``FINDESK_PRESENCE_AWAY_MINUTES`` is away."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        return presence_view(service.set_presence(session, me.id, body.presence))


@router.put(
    "/agents/{agent_id}/capacity",
    response_model=s.PresenceView,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def set_capacity(request: Request, agent_id: str, body: s.CapacitySet) -> s.PresenceView:
    """Open conversations routing may give the agent at once (null: each team's default)."""
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        return presence_view(service.set_capacity(session, agent_id, body.capacity, by=by))
