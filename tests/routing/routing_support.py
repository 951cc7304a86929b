"""Helpers for the teams and routing tests: admins, agents with a presence, and reading what
routing did."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import select
from support.server import LiveServer

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, ConversationEvent


def email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@example.com"


@contextmanager
def agent_client(server: LiveServer, name: str, *, admin: bool = False) -> Iterator[httpx.Client]:
    client = server.agent_http(email(name.lower()), name)
    if admin:
        with server.db.transaction() as session:
            agent = session.get(Agent, client.agent_id)  # type: ignore[attr-defined]
            assert agent is not None
            agent.role = "admin"
    try:
        yield client
    finally:
        client.close()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def go_online(client: httpx.Client) -> None:
    ok(client.put("/me/presence", json={"presence": "online"}))


def conversation_row(server: LiveServer, conversation_id: str) -> Conversation:
    with server.db.read_session() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        session.expunge(row)
        return row


def events(server: LiveServer, conversation_id: str) -> list[ConversationEvent]:
    with server.db.read_session() as session:
        found = list(
            session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.id)
            )
        )
        for event in found:
            session.expunge(event)
        return found
