"""``/api/v1/webhooks`` (administrators: outbound webhook endpoints) and
``/api/v1/me/alerts`` (an agent's email preferences). Thin: authenticate, call the domain, shape.
"""

from __future__ import annotations

from fastapi import Request, Response

from findesk.agent_api.endpoints import ADMIN_ONLY, current_admin
from findesk.agent_api.security import agent_api_router, current_agent
from findesk.alerts import service
from findesk.alerts.models import WebhookEndpoint
from findesk.alerts.schemas import (
    AlertPreferencesIO,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointView,
)
from findesk.kit.http import db_of

router = agent_api_router(tag="Alerts", not_found="No such webhook endpoint.")


def _view(endpoint: WebhookEndpoint) -> WebhookEndpointView:
    return WebhookEndpointView(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        format=endpoint.format,
        active=endpoint.active,
        created_at=endpoint.created_at,
    )


@router.get("/webhooks", response_model=list[WebhookEndpointView], responses=ADMIN_ONLY)
def list_webhooks(request: Request) -> list[WebhookEndpointView]:
    """The outbound webhook endpoints (their secrets are never shown again)."""
    current_admin(request)
    with db_of(request).read_session() as session:
        return [_view(e) for e in service.list_endpoints(session)]


@router.post(
    "/webhooks", response_model=WebhookEndpointCreated, status_code=201, responses=ADMIN_ONLY
)
def create_webhook(request: Request, body: WebhookEndpointIn) -> WebhookEndpointCreated:
    """Register an endpoint. Deliveries are signed (Standard Webhooks headers) with the
    `secret` answered here, once. Private and link-local addresses are refused."""
    admin = current_admin(request)
    settings = request.app.state.settings
    with db_of(request).transaction() as session:
        endpoint = service.create_endpoint(
            session,
            settings,
            url=body.url,
            events=body.events,
            format=body.format,
            created_by=admin.id,
        )
        return WebhookEndpointCreated(
            **_view(endpoint).model_dump(), secret=service.signing_secret(settings, endpoint)
        )


@router.delete("/webhooks/{endpoint_id}", status_code=204, responses=ADMIN_ONLY)
def delete_webhook(request: Request, endpoint_id: str) -> Response:
    """Remove an endpoint; deliveries still queued for it go to dead-letter."""
    current_admin(request)
    with db_of(request).transaction() as session:
        service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get("/me/alerts", response_model=AlertPreferencesIO)
def my_alerts(request: Request) -> AlertPreferencesIO:
    """Which alert emails you get (to your agent email address)."""
    me = current_agent(request)
    with db_of(request).read_session() as session:
        prefs = service.preferences(session, me.id)
        return AlertPreferencesIO(
            email_handover=prefs.email_handover,
            email_assigned=prefs.email_assigned,
            digest_minutes=prefs.digest_minutes,
        )


@router.put("/me/alerts", response_model=AlertPreferencesIO)
def set_my_alerts(request: Request, body: AlertPreferencesIO) -> AlertPreferencesIO:
    me = current_agent(request)
    with db_of(request).transaction() as session:
        service.set_preferences(
            session,
            me.id,
            email_handover=body.email_handover,
            email_assigned=body.email_assigned,
            digest_minutes=body.digest_minutes,
        )
    return body
