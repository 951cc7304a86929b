"""Building lookups and the data they read, for the lookup tests (both backends)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from support.fin import World
from support.server import LiveServer

from findesk.agents.models import Agent
from findesk.agents.service import create_agent
from findesk.lookups import service as lookups
from findesk.lookups.schemas import LookupIn
from findesk.objects import service as objects
from findesk.objects.schemas import AttributeDef, InstanceIn

ORDER_ATTRIBUTES = [
    {"name": "status", "type": "string"},
    {"name": "email", "type": "string"},
    {"name": "total", "type": "decimal"},
    {"name": "paid", "type": "boolean"},
    {"name": "items", "type": "integer"},
]


def admin(server: LiveServer) -> Agent:
    with server.db.transaction() as session:
        return create_agent(
            session, email=f"adm-{uuid.uuid4().hex[:8]}@example.com", name="Ann", role="admin"
        )


def order_type(server: LiveServer, agent: Agent) -> str:
    identifier = f"Order{uuid.uuid4().hex[:8]}"
    with server.db.transaction() as session:
        objects.create_type(
            session,
            agent,
            identifier=identifier,
            name="Order",
            attributes=[AttributeDef.model_validate(a) for a in ORDER_ATTRIBUTES],
            title_attribute=None,
        )
    return identifier


def order(
    server: LiveServer, identifier: str, external_id: str, user_id: str | None, **values: Any
) -> None:
    with server.db.transaction() as session:
        done = objects.upsert_instance(
            session, identifier, InstanceIn(external_id=external_id, custom_attributes=values)
        )
        if user_id is not None:
            objects.link_user(session, identifier, done.instance.id, user_id)


def define(server: LiveServer, agent: Agent, **fields: Any) -> tuple[str, str]:
    """A lookup and one token for it: (lookup id, plain token)."""
    body = LookupIn.model_validate({"name": f"lookup-{uuid.uuid4().hex[:8]}",
                                    "description": "Finds an order", **fields})  # fmt: skip
    with server.db.transaction() as session:
        lookup = lookups.create_lookup(session, agent, body)
        _, token = lookups.issue_token(session, lookup.id, "Intercom")
        return lookup.id, token


@dataclass
class Caller:
    """Fin's Data Connector calling one lookup."""

    http: httpx.Client
    lookup_id: str
    token: str | None

    def __call__(self, token: str | None = "", **params: Any) -> httpx.Response:
        use = self.token if token == "" else token
        headers = {"Authorization": f"Bearer {use}"} if use is not None else {}
        return self.http.get(f"/api/connectors/{self.lookup_id}", params=params, headers=headers)


def people(world: World) -> tuple[str, str, str]:
    """Two end users, and a conversation of the first: (user, other user, conversation)."""
    conversation, _ = world.conversation(body="<p>Where is my order?</p>")
    other = world.user(name="Someone Else")
    return str(conversation["user"]["id"]), str(other["id"]), str(conversation["id"])
