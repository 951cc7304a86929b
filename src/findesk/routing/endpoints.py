"""``/api/v1/routing-rules`` and their preview. Thin: authenticate, call the domain, shape.
Every agent may read the rules; only admins change or preview them."""

from __future__ import annotations

from fastapi import Request, Response

from findesk.agent_api.security import agent_api_router, current_agent
from findesk.kit.http import db_of
from findesk.routing import schemas as s
from findesk.routing import service
from findesk.routing.models import RoutingRule
from findesk.teams.endpoints import ADMIN_FIRST, ADMIN_ONLY, admin_actor, require_admin

router = agent_api_router(tag="Routing rules", not_found="No such routing rule.")


def rule_view(rule: RoutingRule) -> s.RuleView:
    return s.RuleView(
        id=rule.id,
        name=rule.name,
        position=rule.position,
        enabled=rule.enabled,
        conditions=list(rule.conditions),
        actions=dict(rule.actions),
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


@router.get("/routing-rules", response_model=list[s.RuleView])
def list_rules(request: Request) -> list[s.RuleView]:
    """In the order they are tried (the first that matches applies)."""
    current_agent(request)
    with db_of(request).read_session() as session:
        return [rule_view(r) for r in service.list_rules(session)]


@router.post(
    "/routing-rules",
    response_model=s.RuleView,
    status_code=201,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def create_rule(request: Request, response: Response, body: s.RuleIn) -> s.RuleView:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        view = rule_view(service.create_rule(session, body, by=by))
    response.headers["Location"] = f"/api/v1/routing-rules/{view.id}"
    return view


@router.post(
    "/routing-rules/preview",
    response_model=s.PreviewOut,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def preview_rule(request: Request, body: s.PreviewIn) -> s.PreviewOut:
    """Which recent conversations these conditions match now ("test this rule"): changes
    nothing."""
    require_admin(request)
    with db_of(request).read_session() as session:
        examined, found = service.preview(session, body.conditions, body.recent)
        return s.PreviewOut(
            examined=examined,
            matches=[
                s.PreviewMatch(
                    id=c.id,
                    title=c.title,
                    status=c.status,
                    tags=c.tags,
                    team_id=c.team_id,
                    last_activity_at=c.last_activity_at,
                )
                for c in found
            ],
        )


@router.get("/routing-rules/{rule_id}", response_model=s.RuleView)
def get_rule(request: Request, rule_id: str) -> s.RuleView:
    current_agent(request)
    with db_of(request).read_session() as session:
        return rule_view(service.get_rule(session, rule_id))


@router.patch(
    "/routing-rules/{rule_id}",
    response_model=s.RuleView,
    responses=ADMIN_ONLY,
    dependencies=ADMIN_FIRST,
)
def update_rule(request: Request, rule_id: str, body: s.RulePatch) -> s.RuleView:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        return rule_view(service.update_rule(session, rule_id, body, by=by))


@router.delete("/routing-rules/{rule_id}", status_code=204, responses=ADMIN_ONLY)
def delete_rule(request: Request, rule_id: str) -> Response:
    by = admin_actor(request)
    with db_of(request).transaction() as session:
        service.delete_rule(session, rule_id, by=by)
    return Response(status_code=204)
