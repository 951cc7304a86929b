"""The reports count the wait for a person in the team's business hours: a conversation handed
over to a team while it is closed, taken two hours later, has waited no open time; the same in
a team without hours waited two hours. Both backends, real HTTP (Fin API and agent API)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from support.server import LiveServer, database_url

from findesk.agents.models import Agent
from findesk.conversations.models import ConversationEvent
from findesk.kit.timeutil import utcnow
from findesk.reports import service as reports
from findesk.reports.models import ReportFact

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("hours-reports"))
    live = LiveServer(url).start()
    yield live
    live.stop()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_time_to_take_over_counts_only_the_teams_open_time(server: LiveServer) -> None:
    admin = server.agent_http(f"admin-{uuid.uuid4().hex[:6]}@example.com", "Admin")
    with server.db.transaction() as session:
        row = session.get(Agent, admin.agent_id)  # type: ignore[attr-defined]
        assert row is not None
        row.role = "admin"
    closed_day = DAYS[(utcnow() + timedelta(days=3)).weekday()]
    closed = {"timezone": "UTC", "business_hours": {closed_day: [["08:00", "09:00"]]}}
    world = server.fin_world()
    waits = {}
    for label, fields in (("closed", closed), ("always", {})):
        team = ok(
            admin.post("/teams", json={"name": f"{label} {uuid.uuid4().hex[:6]}", **fields}), 201
        )
        ok(
            admin.post(
                "/routing-rules",
                json={
                    "name": label,
                    "conditions": [{"field": "tag", "op": "is", "value": label}],
                    "actions": {"team_id": team["id"]},
                },
            ),
            201,
        )
        conversation, _ = world.conversation(assignee_id=world.fin_agent_id)
        cid = str(conversation["id"])
        world.fin_says(cid)
        world.update(cid, assignee_id=None, tags=[label])
        # The handover two hours ago: the person takes it now.
        with server.db.transaction() as session:
            session.execute(
                update(ConversationEvent)
                .where(
                    ConversationEvent.conversation_id == cid, ConversationEvent.kind == "handover"
                )
                .values(at=utcnow() - timedelta(hours=2))
            )
        ok(admin.post(f"/conversations/{cid}/take-over"))
        waits[label] = cid
    admin.close()

    reports.refresh(server.db, server.settings, full=True)
    with server.db.read_session() as session:
        took = {
            label: session.scalars(
                select(ReportFact.seconds_to_take_over).where(ReportFact.conversation_id == cid)
            ).one()
            for label, cid in waits.items()
        }
    assert took["closed"] == 0.0
    assert took["always"] == pytest.approx(7200, abs=60)
