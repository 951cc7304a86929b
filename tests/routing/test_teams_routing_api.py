"""The agent API for teams, presence, capacity and routing rules: admins change, everyone
reads; validation errors; the rule preview against recent conversations. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from routing_support import agent_client, ok
from support.fin import World
from support.server import LiveServer, database_url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("routing-api"))
    live = LiveServer(url).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    with agent_client(server, "Plain") as client:
        yield client


RULE = {
    "name": "VIP billing",
    "conditions": [{"field": "tag", "op": "is", "value": "billing"}],
    "actions": {"priority": "High"},
}


def problem_fields(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return response.text


def test_non_admins_read_but_cannot_change(admin: httpx.Client, agent: httpx.Client) -> None:
    team = ok(admin.post("/teams", json={"name": "Support"}), 201)
    rule = ok(admin.post("/routing-rules", json=RULE), 201)
    me = agent.agent_id  # type: ignore[attr-defined]
    refused = [
        agent.post("/teams", json={"name": "Mine"}),
        agent.patch(f"/teams/{team['id']}", json={"name": "Mine"}),
        agent.delete(f"/teams/{team['id']}"),
        agent.put(f"/teams/{team['id']}/members/{me}"),
        agent.delete(f"/teams/{team['id']}/members/{me}"),
        agent.put(f"/agents/{me}/capacity", json={"capacity": 50}),
        agent.post("/routing-rules", json=RULE),
        agent.patch(f"/routing-rules/{rule['id']}", json={"enabled": False}),
        agent.delete(f"/routing-rules/{rule['id']}"),
        agent.post("/routing-rules/preview", json={"conditions": RULE["conditions"]}),
        # What they send is not even valid: still a 403 first, telling them nothing about it.
        agent.post("/routing-rules/preview", json={"conditions": [{"field": "nonsense"}]}),
        agent.post("/routing-rules", json={"name": "", "conditions": [{"field": "x"}]}),
        agent.post("/teams", json={"name": 7}),
        agent.put(f"/agents/{me}/capacity", json={"capacity": "lots"}),
        agent.post("/sla-policies", json={"name": ""}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused), [
        (r.request.url.path, r.status_code) for r in refused
    ]
    # Nothing changed, and reading is open to every agent.
    assert ok(agent.get(f"/teams/{team['id']}")) == team
    assert ok(agent.get(f"/routing-rules/{rule['id']}")) == rule
    assert team["id"] in [t["id"] for t in ok(agent.get("/teams"))]
    # Their own presence, every agent sets.
    assert ok(agent.put("/me/presence", json={"presence": "online"}))["effective"] == "online"
    # Without a token: 401.
    anonymous = httpx.get(str(agent.base_url).rstrip("/") + "/teams")
    assert anonymous.status_code == 401


def test_teams_crud_and_members(
    admin: httpx.Client, agent: httpx.Client, server: LiveServer
) -> None:
    me = agent.agent_id  # type: ignore[attr-defined]
    team = ok(
        admin.post(
            "/teams",
            json={"name": "Sales", "assignment_method": "least_busy", "capacity_default": 5},
        ),
        201,
    )
    assert (team["assignment_method"], team["capacity_default"], team["member_ids"]) == (
        "least_busy",
        5,
        [],
    )
    assert ok(admin.put(f"/teams/{team['id']}/members/{me}"))["member_ids"] == [me]
    assert ok(agent.get("/team-queues")) == [
        {"team_id": team["id"], "name": "Sales", "open": 0, "waiting": 0}
    ]
    renamed = ok(admin.patch(f"/teams/{team['id']}", json={"name": "Sales EU"}))
    assert renamed["name"] == "Sales EU"
    assert ok(admin.delete(f"/teams/{team['id']}/members/{me}"))["member_ids"] == []
    assert admin.delete(f"/teams/{team['id']}/members/{me}").status_code == 404
    assert admin.put(f"/teams/{team['id']}/members/{server.fin_agent_id}").status_code == 404
    assert admin.put(f"/teams/{team['id']}/members/agt_nobody").status_code == 404
    ok(admin.delete(f"/teams/{team['id']}"), 204)
    assert admin.get(f"/teams/{team['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": ""}, 422),
        ({"name": "X", "assignment_method": "random"}, 422),
        ({"name": "X", "capacity_default": -1}, 422),
        ({"name": "X", "colour": "red"}, 422),
        ({"name": "X", "member_ids": ["agt_nobody"]}, 404),
    ],
)
def test_team_validation(admin: httpx.Client, body: dict[str, Any], status: int) -> None:
    assert admin.post("/teams", json=body).status_code == status


def test_a_duplicate_team_name_is_a_conflict(admin: httpx.Client) -> None:
    ok(admin.post("/teams", json={"name": "Duplicated"}), 201)
    assert admin.post("/teams", json={"name": "Duplicated"}).status_code == 409


@pytest.mark.parametrize(
    "change",
    [
        {"conditions": [{"field": "colour", "op": "is", "value": "red"}]},
        {"conditions": [{"field": "tag", "op": "gt", "value": 3}]},
        {"conditions": [{"field": "conversation.size", "op": "gt", "value": "big"}]},
        {"conditions": [{"field": "conversation.plan", "op": "in", "value": []}]},
        {
            "conditions": [
                {"field": "time", "op": "between", "value": {"start": "9am", "end": "17:00"}}
            ]
        },
        {
            "conditions": [
                {
                    "field": "time",
                    "op": "between",
                    "value": {"start": "09:00", "end": "17:00", "timezone": "Mars/Olympus"},
                }
            ]
        },
        {"actions": {}},
        {"actions": {"team_id": "team_nosuch"}},
        {"actions": {"add_tags": [""]}},
        {"name": ""},
    ],
)
def test_rule_validation(admin: httpx.Client, change: dict[str, Any]) -> None:
    response = admin.post("/routing-rules", json={**RULE, **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_rules_are_listed_in_order_and_edited(admin: httpx.Client) -> None:
    for rule in ok(admin.get("/routing-rules")):
        ok(admin.delete(f"/routing-rules/{rule['id']}"), 204)
    second = ok(admin.post("/routing-rules", json={**RULE, "name": "Second", "position": 5}), 201)
    first = ok(admin.post("/routing-rules", json={**RULE, "name": "First", "position": 1}), 201)
    last = ok(admin.post("/routing-rules", json={**RULE, "name": "Last"}), 201)
    assert last["position"] == 6
    assert [r["name"] for r in ok(admin.get("/routing-rules"))] == ["First", "Second", "Last"]
    moved = ok(admin.patch(f"/routing-rules/{first['id']}", json={"position": 9, "enabled": False}))
    assert (moved["position"], moved["enabled"]) == (9, False)
    assert [r["name"] for r in ok(admin.get("/routing-rules"))] == ["Second", "Last", "First"]
    ok(admin.delete(f"/routing-rules/{second['id']}"), 204)
    assert admin.get(f"/routing-rules/{second['id']}").status_code == 404


def test_preview_shows_the_recent_conversations_a_rule_would_match(
    admin: httpx.Client, server: LiveServer
) -> None:
    world: World = server.fin_world()
    vip = world.user(attributes={"plan": "vip"})
    billing, _ = world.conversation(vip, title="Refund please")
    world.update(billing["id"], tags=["Billing"], attributes={"issue_type": "Billing"})
    other, _ = world.conversation(vip)
    world.update(other["id"], tags=["Shipping"])
    stranger, _ = world.conversation()
    world.update(stranger["id"], tags=["Billing"])
    preview = ok(
        admin.post(
            "/routing-rules/preview",
            json={
                "conditions": [
                    {"field": "tag", "op": "is", "value": "billing"},
                    {"field": "user.plan", "op": "is", "value": "VIP"},
                ],
                "recent": 50,
            },
        )
    )
    assert preview["examined"] >= 3
    assert [(m["id"], m["title"], m["tags"]) for m in preview["matches"]] == [
        (billing["id"], "Refund please", ["Billing"])
    ]
    # The preview changed nothing.
    after = ok(admin.get(f"/conversations/{billing['id']}"))["conversation"]
    assert after["assignee"]["id"] == server.fin_agent_id
    bad = admin.post("/routing-rules/preview", json={"conditions": [{"field": "x", "op": "is"}]})
    assert bad.status_code == 422
