"""The Fin emulator's next sync run after a handover sees what findesk tells Fin about the team:
a real findesk and the real emulator on loopback, a team closed now, a rule routing Fin's
handover tag to it; the emulated Fin hands over, and the run the webhook triggers fetches
``findesk_team_open: false`` and when the team opens. Both backends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from loop_support import Loop, start_loop
from support.server import database_url

from findesk.agents.models import Agent
from findesk.emulator.answerer import TAG_HANDED_OVER
from findesk.emulator.sync import SyncEngine
from findesk.kit.timeutil import utcnow

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture(params=["sqlite", "postgres"])
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    wired = start_loop(tmp_path, database_url(request.param, request, tmp_path))
    yield wired
    wired.stop()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    """``check()``'s first truthy answer, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the emulator's sync run")
        pause.wait(0.05)


def test_the_next_sync_run_after_a_handover_sees_the_team_closed_and_when_it_opens(
    loop: Loop,
) -> None:
    findesk = loop.findesk
    admin = findesk.agent_http("night-admin@example.com", "Night Admin")
    with findesk.db.transaction() as session:
        row = session.get(Agent, admin.agent_id)  # type: ignore[attr-defined]
        assert row is not None
        row.role = "admin"
    opens = (utcnow() + timedelta(days=3)).replace(hour=8, minute=30, second=0, microsecond=0)
    team = ok(
        admin.post(
            "/teams",
            json={
                "name": "Night desk",
                "timezone": "UTC",
                "business_hours": {DAYS[opens.weekday()]: [["08:30", "09:00"]]},
            },
        ),
        201,
    )
    assert team["open_now"] is False
    ok(
        admin.post(
            "/routing-rules",
            json={
                "name": "Fin's handovers to the night desk",
                "conditions": [{"field": "tag", "op": "is", "value": TAG_HANDED_OVER}],
                "actions": {"team_id": team["id"]},
            },
        ),
        201,
    )
    admin.close()

    engine: SyncEngine = loop.emulator.app.state.engine
    run = engine.start_conversation(
        {"object_id": "night-visitor", "name": "Nia", "email": "nia@example.com"},
        "<p>I want to talk to a human please.</p>",
    )
    assert run.error is None and run.decision is not None and run.decision.hand_over
    conversation_id = run.conversation_id
    assert conversation_id is not None

    with loop.admin() as emulator:
        url = f"/emulator/conversations/{conversation_id}/fetched"
        # The handover's run created the conversation and handed it over without fetching it
        # again; findesk's webhook starts the next run, which fetches what findesk wrote.
        fetched = wait_for(
            lambda: (
                (answer := emulator.get(url)).status_code == 200
                and "findesk_team_open" in answer.json()["attributes"]
                and answer.json()
            )
        )
        assert fetched["sync_runs"] >= 1
        attributes = fetched["attributes"]
        assert attributes["findesk_team"] == "Night desk"
        assert attributes["findesk_team_open"] is False
        assert attributes["findesk_team_opens_at"] == opens.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert fetched["conversation"]["assignee"] is None  # waiting for a person

        # The inspection is for the emulator's admin only, and only of fetched conversations.
        assert httpx.get(f"{loop.emulator.base_url}{url}").status_code == 401
        assert emulator.get("/emulator/conversations/conv_nope/fetched").status_code == 404
