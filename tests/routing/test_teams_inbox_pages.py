"""The inbox side: the presence control in the top bar (and signing out: offline), the team
queue in the sidebar, and the administrators' teams and routing pages (403 for others, CSRF,
validation, "test this rule"). Both backends, real HTTP, forms as a browser sends them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from inbox.web_support import Person, Web, new_agent, parse_html, sign_in, start_server
from routing_support import conversation_row
from sqlalchemy import select
from support.fin import World
from support.server import LiveServer

from findesk.agents.models import Agent
from findesk.routing.models import RoutingRule
from findesk.teams.models import Team


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, Path(tmp_path_factory.mktemp("teams-inbox")))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def boss(server: LiveServer) -> Person:
    return new_agent(server, "Bea Boss", role="admin")


@pytest.fixture(scope="module")
def admin_web(server: LiveServer, boss: Person) -> Iterator[Web]:
    web = sign_in(server, boss)
    yield web
    web.close()


def agent_row(server: LiveServer, agent_id: str) -> Agent:
    with server.db.read_session() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        session.expunge(agent)
        return agent


def team_named(server: LiveServer, name: str) -> Team:
    with server.db.read_session() as session:
        team = session.scalars(select(Team).where(Team.name == name)).one()
        session.expunge(team)
        return team


def test_agents_cannot_open_or_post_the_admin_pages(server: LiveServer) -> None:
    person = new_agent(server, "Al Agent")
    web = sign_in(server, person)
    try:
        for path in ("/inbox/admin/teams", "/inbox/admin/routing"):
            assert web.get(path).status_code == 403
        posts = [
            web.post("/inbox/admin/teams", {"name": "Mine"}),
            web.post(
                "/inbox/admin/routing", {"name": "R", "conditions": "tag is x", "priority": "1"}
            ),
            web.post("/inbox/admin/routing/preview", {"conditions": "tag is x"}),
            web.post(f"/inbox/admin/agents/{person.id}/capacity", {"capacity": "99"}),
        ]
        assert [r.status_code for r in posts] == [403] * len(posts)
        with server.db.read_session() as session:
            assert session.scalars(select(Team).where(Team.name == "Mine")).first() is None
        assert agent_row(server, person.id).capacity is None
    finally:
        web.close()


def test_a_form_without_its_csrf_token_changes_nothing(server: LiveServer, admin_web: Web) -> None:
    response = admin_web.post("/inbox/admin/teams", {"name": "Forged"}, csrf=False)
    assert response.status_code == 403
    with server.db.read_session() as session:
        assert session.scalars(select(Team).where(Team.name == "Forged")).first() is None


def test_presence_is_set_in_the_top_bar_signing_in_makes_one_online_and_out_offline(
    server: LiveServer,
) -> None:
    person = new_agent(server, "Pat Present")
    assert agent_row(server, person.id).presence == "offline"  # agents start offline
    web = sign_in(server, person)
    page = web.page("/inbox")
    chosen = page.find("select", id="my-presence").find("option", selected="")
    assert chosen.attrs["value"] == "online"
    assert web.post("/inbox/presence", {"presence": "away"}).status_code == 303
    assert agent_row(server, person.id).presence == "away"
    page = web.page("/inbox")
    assert page.find("select", id="my-presence").find("option", selected="").attrs["value"] == (
        "away"
    )
    assert web.post("/inbox/presence", {"presence": "asleep"}).status_code == 303
    assert agent_row(server, person.id).presence == "away"
    # Signing in again (another tab, another device) leaves a chosen "away" as it is.
    sign_in(server, person)
    assert agent_row(server, person.id).presence == "away"
    assert web.post("/logout").status_code == 303
    assert agent_row(server, person.id).presence == "offline"


def test_admins_build_a_team_and_a_rule_and_handovers_land_in_its_queue(
    server: LiveServer, admin_web: Web
) -> None:
    member = new_agent(server, "Mo Member")
    other = new_agent(server, "Ollie Other")
    response = admin_web.post(
        "/inbox/admin/teams",
        {
            "name": "Billing",
            "assignment_method": "least_busy",
            "capacity_default": "1",
            "member_ids": member.id,
        },
    )
    assert response.status_code == 303
    team = team_named(server, "Billing")
    assert (team.assignment_method, team.capacity_default) == ("least_busy", 1)
    page = admin_web.page("/inbox/admin/teams")
    section = page.find("section", data_team_id=team.id)
    assert [row.attrs["data-agent-id"] for row in section.find_all("tr", cls="member")] == [
        member.id
    ]
    # Refused input comes back as an error, changing nothing.
    admin_web.post("/inbox/admin/teams", {"name": "Billing"})
    assert "exists already" in admin_web.page("/inbox/admin/teams").find("p", cls="error").text
    admin_web.post("/inbox/admin/teams", {"name": "Bad", "capacity_default": "lots"})
    assert "whole number" in admin_web.page("/inbox/admin/teams").find("p", cls="error").text

    # A rule with a bad line is shown again with the error (422), and not saved.
    bad = admin_web.post(
        "/inbox/admin/routing",
        {"name": "Billing", "conditions": "tag is Billing\ncolour is red", "team_id": team.id},
    )
    assert bad.status_code == 422
    assert "Condition line 2" in parse_html(bad.text).find("p", cls="error").text
    with server.db.read_session() as session:
        assert session.scalars(select(RoutingRule)).first() is None

    world: World = server.fin_world()
    earlier, _ = world.conversation(title="Invoice twice")
    world.update(earlier["id"], tags=["Billing"])
    # "Test this rule": the recent conversation it would match, nothing saved or changed.
    tested = admin_web.post(
        "/inbox/admin/routing/preview",
        {"name": "Billing", "conditions": "tag is billing", "team_id": team.id},
    )
    assert tested.status_code == 200
    matches = parse_html(tested.text).find("ul", cls="preview-matches")
    assert [li.attrs["data-conversation-id"] for li in matches.find_all("li")] == [earlier["id"]]
    assert conversation_row(server, earlier["id"]).team_id is None

    created = admin_web.post(
        "/inbox/admin/routing",
        {
            "name": "Billing",
            "conditions": "tag is billing\nconversation.amount gt 10",
            "team_id": team.id,
            "priority": "High",
        },
    )
    assert created.status_code == 303
    rules = admin_web.page("/inbox/admin/routing").find_all("tr", cls="rule")
    assert len(rules) == 1
    assert "conversation.amount gt 10" in rules[0].text

    # The member is offline: a matching handover waits in the team's queue, which only the
    # team's members see in their sidebar.
    member_web = sign_in(server, member)
    assert member_web.post("/inbox/presence", {"presence": "offline"}).status_code == 303
    other_web = sign_in(server, other)
    try:
        first, _ = world.conversation(assignee_id=world.fin_agent_id)
        world.update(first["id"], tags=["Billing"], attributes={"amount": 12}, assignee_id=None)
        assert conversation_row(server, first["id"]).assignee_id is None
        page = member_web.page("/inbox")
        link = page.find("a", cls="team-queue", data_team=team.id)
        assert link.find("span", cls="count").text.strip() == "1"
        assert other_web.page("/inbox").first("a", cls="team-queue") is None
        queue = member_web.page("/inbox", queue="waiting", team=team.id)
        assert "Billing" in queue.find("h1", cls="queue-title").text
        listed = [
            a.attrs["href"] for a in queue.find_all("a") if first["id"] in a.attrs.get("href", "")
        ]
        assert listed
        assert earlier["id"] not in queue.text

        # Online now: the next is theirs; at capacity (1), the one after waits again.
        member_web.post("/inbox/presence", {"presence": "online"})
        second, _ = world.conversation(assignee_id=world.fin_agent_id)
        world.update(second["id"], tags=["Billing"], attributes={"amount": 50}, assignee_id=None)
        assert conversation_row(server, second["id"]).assignee_id == member.id
        third, _ = world.conversation(assignee_id=world.fin_agent_id)
        world.update(third["id"], tags=["Billing"], attributes={"amount": 50}, assignee_id=None)
        assert conversation_row(server, third["id"]).assignee_id is None
        # An admin raises the member's own capacity; the team page shows it.
        admin_web.post(f"/inbox/admin/agents/{member.id}/capacity", {"capacity": "5"})
        assert agent_row(server, member.id).capacity == 5
    finally:
        member_web.close()
        other_web.close()
