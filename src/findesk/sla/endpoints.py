"""``/api/v1/sla-policies``. Thin: authenticate, call the domain, shape. Every agent may read
the policies; only admins change them."""

from __future__ import annotations

from fastapi import Request, Response

from findesk.agent_api.security import agent_api_router, current_agent
from findesk.conversations import service as conversations
from findesk.kit.http import db_of
from findesk.sla import schemas as s
from findesk.sla import service
from findesk.sla.models import SlaPolicy, SlaTimer
from findesk.teams.endpoints import ADMIN_FIRST, ADMIN_ONLY, admin_actor

router = agent_api_router(tag="SLA policies", not_found="No such SLA policy.")


def policy_view(policy: SlaPolicy) -> s.PolicyView:
    return s.PolicyView(
        id=policy.id,
        name=policy.name,
        position=policy.position,
        team_id=policy.team_id,
        priority=policy.priority,
        first_response_minutes=policy.first_response_minutes,
        next_response_minutes=policy.next_response_minutes,
        resolution_minutes=policy.resolution_minutes,
        escalation=policy.escalation,
        escalation_team_id=policy.escalation_team_id,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


@router.get("/sla-policies", response_model=list[s.PolicyView])
def list_policies(request: Request) -> list[s.PolicyView]:
    """In the order they are tried (the first that matches a conversation applies)."""
    current_agent(request)
    with db_of(request).read_session() as session:
        return [policy_view(p) for p in service.list_policies(session)]


@router.post(
    "/sla-policies",
    response_model=s.PolicyView,
    status_code=201,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def create_policy(request: Request, response: Response, body: s.PolicyIn) -> s.PolicyView:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        view = policy_view(service.create_policy(session, body, by=by))
    response.headers["Location"] = f"/api/v1/sla-policies/{view.id}"
    return view


@router.get("/sla-policies/{policy_id}", response_model=s.PolicyView)
def get_policy(request: Request, policy_id: str) -> s.PolicyView:
    current_agent(request)
    with db_of(request).read_session() as session:
        return policy_view(service.get_policy(session, policy_id))


@router.patch(
    "/sla-policies/{policy_id}",
    response_model=s.PolicyView,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def update_policy(request: Request, policy_id: str, body: s.PolicyPatch) -> s.PolicyView:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        return policy_view(service.update_policy(session, policy_id, body, by=by))


@router.delete("/sla-policies/{policy_id}", status_code=204, responses=ADMIN_ONLY)
def delete_policy(request: Request, policy_id: str) -> Response:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        service.delete_policy(session, policy_id, by=by)
    return Response(status_code=204)


def timer_view(timer: SlaTimer) -> s.TimerView:
    if timer.met_at is not None:
        state = "met"
    elif timer.breached_at is not None:
        state = "breached"
    elif timer.paused_at is not None:
        state = "paused"
    else:
        state = "running"
    return s.TimerView(
        target=timer.target,
        state=state,
        policy_id=timer.policy_id,
        policy_name=timer.policy_name,
        started_at=timer.started_at,
        due_at=None if state in ("met", "paused") else timer.due_at,
        met_at=timer.met_at,
        breached_at=timer.breached_at,
    )


@router.get("/conversations/{conversation_id}/sla", response_model=list[s.TimerView])
def conversation_sla(request: Request, conversation_id: str) -> list[s.TimerView]:
    """The conversation's SLA timers (none: no policy applies to it)."""
    current_agent(request)
    with db_of(request).read_session() as session:
        conversations.get_conversation(session, conversation_id)
        return [timer_view(t) for t in service.timers(session, conversation_id)]
