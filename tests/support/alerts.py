"""Helpers of the alerts tests: agents with a role, and Standard Webhooks verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import httpx

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from support.server import LiveServer


def agent_client(server: LiveServer, name: str, role: str = "agent") -> httpx.Client:
    """An agent API client as a new agent (``.agent_id``, ``.email``)."""
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
    with server.db.transaction() as session:
        agent = create_agent(session, email=email, name=name, role=role)
        agent_id, token = agent.id, create_agent_token(session, agent)
    client = httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    client.agent_id = agent_id  # type: ignore[attr-defined]
    client.email = email  # type: ignore[attr-defined]
    return client


def verify_standard_webhook(secret: str, headers: dict[str, str], raw: bytes) -> None:
    """What a receiver does (standardwebhooks.com): HMAC-SHA256 of "id.timestamp.body"."""
    lower = {k.lower(): v for k, v in headers.items()}
    message_id, timestamp = lower["webhook-id"], lower["webhook-timestamp"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{message_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    ).decode()
    signatures = [s.split(",", 1)[1] for s in lower["webhook-signature"].split() if "," in s]
    assert any(hmac.compare_digest(expected, s) for s in signatures), "bad webhook signature"
