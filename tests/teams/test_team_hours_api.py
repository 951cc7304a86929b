"""Teams' business hours through the agent API (admins set them, everyone sees them and whether
the team is open), with clear 422s; ``calendar_for``; and what findesk tells Fin at handover
about the team routing chose. Both backends, real HTTP (agent API and Fin API)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from support.fin import World
from support.server import LiveServer, database_url

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation, ConversationEvent
from findesk.kit.timeutil import utcnow
from findesk.teams import hours
from findesk.teams.service import calendar_for

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("team-hours"))
    live = LiveServer(url).start()
    yield live
    live.stop()


def _client(server: LiveServer, name: str, *, admin: bool) -> httpx.Client:
    client = server.agent_http(f"{name}-{uuid.uuid4().hex[:8]}@example.com", name)
    if admin:
        with server.db.transaction() as session:
            agent = session.get(Agent, client.agent_id)  # type: ignore[attr-defined]
            assert agent is not None
            agent.role = "admin"
    return client


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    client = _client(server, "Admin", admin=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    client = _client(server, "Plain", admin=False)
    yield client
    client.close()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def name() -> str:
    return f"Team {uuid.uuid4().hex[:8]}"


def closed_now_hours() -> tuple[dict[str, Any], datetime]:
    """Weekly hours (UTC) open one hour, two days from now: closed now; and when it opens."""
    opens = (utcnow() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    return {DAYS[opens.weekday()]: [["10:00", "11:00"]]}, opens


def test_admins_set_hours_everyone_sees_them_and_whether_open(
    server: LiveServer, admin: httpx.Client, agent: httpx.Client
) -> None:
    weekly, opens = closed_now_hours()
    team = ok(
        admin.post(
            "/teams",
            json={
                "name": name(),
                "timezone": "UTC",
                "business_hours": weekly,
                "holidays": ["2031-01-01", "2030-12-25", "2031-01-01"],
            },
        ),
        201,
    )
    assert team["business_hours"] == weekly
    assert team["holidays"] == ["2030-12-25", "2031-01-01"]
    assert team["open_now"] is False
    assert datetime.fromisoformat(team["opens_at"]) == opens

    seen = ok(agent.get(f"/teams/{team['id']}"))
    assert seen["timezone"] == "UTC" and seen["business_hours"] == weekly
    assert ok(agent.patch(f"/teams/{team['id']}", json={"timezone": "Asia/Tokyo"}), 403)

    # Midnight ends are written 24:00; a day's intervals come sorted.
    every_day = {day: [["12:00", "00:00"], ["00:00", "12:00"]] for day in DAYS}
    patched = ok(
        admin.patch(
            f"/teams/{team['id']}", json={"timezone": "Europe/Paris", "business_hours": every_day}
        )
    )
    assert patched["business_hours"]["mon"] == [["00:00", "12:00"], ["12:00", "24:00"]]
    assert patched["timezone"] == "Europe/Paris" and patched["open_now"] is True
    assert patched["opens_at"] is None
    assert patched["holidays"] == ["2030-12-25", "2031-01-01"]  # left as it was

    # null: always open, UTC, no holidays.
    cleared = ok(
        admin.patch(
            f"/teams/{team['id']}",
            json={"business_hours": None, "timezone": None, "holidays": []},
        )
    )
    assert cleared["business_hours"] is None and cleared["timezone"] is None
    assert cleared["open_now"] is True and cleared["holidays"] == []
    with server.db.read_session() as session:
        assert calendar_for(session, team["id"]) == hours.ALWAYS
        assert calendar_for(session, None) == hours.ALWAYS


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"business_hours": {"mon": [["17:00", "09:00"]]}}, "ends before it starts"),
        ({"business_hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "overlap"),
        ({"business_hours": {"mon": [["9:00", "17:00"]]}}, "business_hours"),
        ({"business_hours": {"mon": [["24:00", "24:00"]]}}, "cannot start at 24:00"),
        ({"business_hours": {"mon": [["09:60", "17:00"]]}}, "business_hours"),
        ({"business_hours": {"someday": [["09:00", "17:00"]]}}, "business_hours"),
        ({"business_hours": {"mon": []}}, "at least one open interval"),
        ({"holidays": ["2026-02-30"]}, "is not a date"),
        ({"holidays": ["25/12/2026"]}, "holidays"),
    ],
)
def test_bad_hours_are_refused_with_a_clear_422(
    server: LiveServer, admin: httpx.Client, fields: dict[str, Any], says: str
) -> None:
    created = admin.post("/teams", json={"name": name(), **fields})
    assert created.status_code == 422 and says in created.text, created.text
    team = ok(admin.post("/teams", json={"name": name()}), 201)
    patched = admin.patch(f"/teams/{team['id']}", json=fields)
    assert patched.status_code == 422 and says in patched.text, patched.text
    assert ok(admin.get(f"/teams/{team['id']}"))["business_hours"] is None


# --- what Fin is told at handover -----------------------------------------------------------


def team_with_rule(admin: httpx.Client, tag: str, **fields: Any) -> dict[str, Any]:
    team = ok(admin.post("/teams", json={"name": name(), **fields}), 201)
    ok(
        admin.post(
            "/routing-rules",
            json={
                "name": f"{tag} to {team['name']}",
                "conditions": [{"field": "tag", "op": "is", "value": tag}],
                "actions": {"team_id": team["id"]},
            },
        ),
        201,
    )
    return dict(team)


def hand_over(world: World, tag: str) -> str:
    conversation, _ = world.conversation(assignee_id=world.fin_agent_id)
    world.fin_says(conversation["id"])
    world.update(conversation["id"], assignee_id=None, tags=[tag])
    return str(conversation["id"])


def attributes_of(server: LiveServer, conversation_id: str) -> dict[str, Any]:
    with server.db.read_session() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        return dict(row.attributes)


def fin_sees(world: World, conversation_id: str) -> dict[str, Any]:
    """The conversation's attributes as Fin fetches them (the Fin API)."""
    reply = world.api.get_conversation(conversation_id)
    assert reply.status == 200, reply.error
    data = dict(reply.data)
    return dict(data.get("custom_attributes") or data.get("attributes") or {})


def test_a_closed_team_tells_fin_it_is_closed_and_when_it_opens(
    server: LiveServer, admin: httpx.Client, world: World
) -> None:
    tag = f"night-{uuid.uuid4().hex[:6]}"
    weekly, opens = closed_now_hours()
    team = team_with_rule(admin, tag, timezone="UTC", business_hours=weekly)
    conversation_id = hand_over(world, tag)
    attributes = attributes_of(server, conversation_id)
    assert attributes["findesk_team"] == team["name"]
    assert attributes["findesk_team_open"] is False
    assert attributes["findesk_team_opens_at"] == opens.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "findesk_expected_wait_minutes" not in attributes  # no history yet
    seen = fin_sees(world, conversation_id)
    assert seen["findesk_team_open"] is False
    assert seen["findesk_team_opens_at"] == attributes["findesk_team_opens_at"]


def test_an_open_team_tells_fin_it_is_open_and_the_median_wait(
    server: LiveServer, admin: httpx.Client, world: World
) -> None:
    tag = f"day-{uuid.uuid4().hex[:6]}"
    team = team_with_rule(admin, tag)  # no hours: always open
    # Five past conversations of the team, taken 5, 10, 20, 30 and 40 minutes after their
    # handover; one handed over 15 days ago does not count, nor one of another team.
    waits = [5, 10, 20, 30, 40]
    now = utcnow()
    past = [(m, team["id"], 0) for m in waits] + [(500, team["id"], 15), (900, None, 0)]
    ids = [world.conversation()[0]["id"] for _ in past]
    with server.db.transaction() as session:
        for conversation_id, (minutes, team_id, days_ago) in zip(ids, past, strict=True):
            row = session.get(Conversation, conversation_id)
            assert row is not None
            row.team_id = team_id
            session.add(
                ConversationEvent(
                    conversation_id=row.id,
                    kind="take_over",
                    actor="agent",
                    detail={"seconds_after_handover": minutes * 60.0},
                    at=now - timedelta(days=days_ago),
                )
            )
    conversation_id = hand_over(world, tag)
    attributes = attributes_of(server, conversation_id)
    assert attributes["findesk_team"] == team["name"]
    assert attributes["findesk_team_open"] is True
    assert "findesk_team_opens_at" not in attributes
    assert attributes["findesk_expected_wait_minutes"] == 20
    assert fin_sees(world, conversation_id)["findesk_expected_wait_minutes"] == 20


def test_a_conversation_outside_any_team_is_told_nothing(server: LiveServer, world: World) -> None:
    conversation_id = hand_over(world, f"none-{uuid.uuid4().hex[:6]}")
    assert not any(k.startswith("findesk_team") for k in attributes_of(server, conversation_id))


def test_calendar_for_reads_the_stored_hours(server: LiveServer, admin: httpx.Client) -> None:
    team = ok(
        admin.post(
            "/teams",
            json={
                "name": name(),
                "timezone": "America/New_York",
                "business_hours": {"mon": [["09:00", "17:00"]], "sat": [["22:00", "24:00"]]},
                "holidays": ["2026-12-07"],
            },
        ),
        201,
    )
    with server.db.read_session() as session:
        calendar = calendar_for(session, team["id"])
    monday = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # 09:30 in New York
    assert hours.is_open(calendar, monday)
    assert not hours.is_open(calendar, monday + timedelta(days=7))  # the holiday
    assert hours.next_open(calendar, monday + timedelta(days=7)) == datetime(
        2026, 12, 13, 3, tzinfo=UTC
    )  # Saturday 22:00 in New York
    assert hours.elapsed(calendar, monday, monday + timedelta(days=7)) == (7.5 + 2) * 3600
