"""Routing rules route Fin's handovers by the tags and attributes Fin wrote: to the right team
and to one of its online members under capacity (round robin, least busy), else into the team's
queue; recorded in the history with the rule. Both backends, real HTTP (Fin API and agent API).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from routing_support import agent_client, conversation_row, events, go_online, ok
from support.fin import World
from support.server import LiveServer, database_url

from findesk.agents.models import Agent
from findesk.conversations import service as conversations
from findesk.kit.actor import SYSTEM
from findesk.kit.timeutil import utcnow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("routing"))
    live = LiveServer(url).start()
    yield live
    live.stop()


def new_team(admin: httpx.Client, name: str, members: list[httpx.Client], **fields: Any) -> str:
    team = ok(
        admin.post(
            "/teams",
            json={"name": name, "member_ids": [m.agent_id for m in members], **fields},  # type: ignore[attr-defined]
        ),
        201,
    )
    return str(team["id"])


def new_rule(
    admin: httpx.Client, name: str, conditions: list[dict[str, Any]], **actions: Any
) -> str:
    rule = ok(
        admin.post(
            "/routing-rules", json={"name": name, "conditions": conditions, "actions": actions}
        ),
        201,
    )
    return str(rule["id"])


def handed_over(world: World, **changes: Any) -> dict[str, Any]:
    """A conversation Fin opened and answered, then handed over with ``changes`` (tags and
    attributes, as Fin writes them in the handover's own update)."""
    conversation, _ = world.conversation(assignee_id=world.fin_agent_id)
    world.fin_says(conversation["id"])
    return world.update(conversation["id"], assignee_id=None, **changes)


def assignee_of(answer: dict[str, Any]) -> str | None:
    """The assignee Fin's own update answer shows (what Fin learns)."""
    assignee = answer.get("assignee")
    return str(assignee["id"]) if assignee else None


def test_handovers_go_to_the_team_the_tags_and_attributes_say_round_robin(
    server: LiveServer, world: World, admin: httpx.Client, clean_rules: None
) -> None:
    with ExitStack() as stack:
        ann = stack.enter_context(agent_client(server, "Ann"))
        bob = stack.enter_context(agent_client(server, "Bob"))
        cid = stack.enter_context(agent_client(server, "Cid"))
        for agent in (ann, bob, cid):
            go_online(agent)
        billing = new_team(admin, "Billing", [ann, bob])
        tech = new_team(admin, "Technical", [cid])
        billing_rule = new_rule(
            admin,
            "Billing by tag",
            [{"field": "tag", "op": "is", "value": "billing"}],
            team_id=billing,
            priority="High",
        )
        new_rule(
            admin,
            "Technical by issue type",
            [{"field": "conversation.issue_type", "op": "in", "value": ["Technical", "Bug"]}],
            team_id=tech,
            add_tags=["tech"],
        )

        owners = []
        for _ in range(4):
            answer = handed_over(world, tags=["Billing"], attributes={"issue_type": "Billing"})
            conversation_id = answer["id"]
            row = conversation_row(server, conversation_id)
            assert row.team_id == billing
            assert row.attributes["priority"] == "High"
            owners.append(row.assignee_id)
            assert assignee_of(answer) == row.assignee_id  # Fin's answer shows the person
        ann_id, bob_id = ann.agent_id, bob.agent_id  # type: ignore[attr-defined]
        first = owners[0]
        other = bob_id if first == ann_id else ann_id
        assert owners == [first, other, first, other]  # round robin

        # The history: the handover, the rule that matched, what it changed, then the person.
        history = events(server, conversation_id)
        kinds = [(e.kind, e.actor) for e in history]
        assert kinds[kinds.index(("handover", "fin")) :] == [
            ("handover", "fin"),
            ("routed", "system"),
            ("attributes", "system"),
            ("priority", "system"),
            ("team", "system"),
            ("assigned", "system"),
            ("attributes", "system"),  # what Fin is told of the team (teams.availability)
        ]
        routed = next(e for e in history if e.kind == "routed")
        assert routed.detail == {"rule_id": billing_rule, "rule_name": "Billing by tag"}

        # An attribute Fin learned routes to another team (compared ignoring case), and the
        # rule's tag is added: Fin's own answer shows both.
        answer = handed_over(world, attributes={"issue_type": "bug"})
        row = conversation_row(server, answer["id"])
        assert (row.team_id, row.assignee_id) == (tech, cid.agent_id)  # type: ignore[attr-defined]
        assert answer["tags"] == ["tech"]
        assert answer["assignee"]["name"] == "Cid"

        # Nothing matches: the shared queue, as before.
        answer = handed_over(world, attributes={"issue_type": "Shipping"})
        row = conversation_row(server, answer["id"])
        assert (row.team_id, row.assignee_id) == (None, None)


def test_least_busy_presence_capacity_and_the_team_queue(
    server: LiveServer, world: World, admin: httpx.Client, clean_rules: None
) -> None:
    with ExitStack() as stack:
        dee = stack.enter_context(agent_client(server, "Dee"))
        eve = stack.enter_context(agent_client(server, "Eve"))
        fay = stack.enter_context(agent_client(server, "Fay"))
        for agent in (dee, eve, fay):
            go_online(agent)
        team = new_team(
            admin, "Refunds", [dee, eve, fay], assignment_method="least_busy", capacity_default=4
        )
        new_rule(
            admin,
            "Refunds for VIPs",
            [
                {"field": "user.plan", "op": "is", "value": "vip"},
                {"field": "tag", "op": "in", "value": ["refund", "chargeback"]},
            ],
            team_id=team,
        )
        vip = world.user(attributes={"plan": "VIP"})

        def refund() -> str | None:
            conversation, _ = world.conversation(vip, assignee_id=world.fin_agent_id)
            return assignee_of(world.update(conversation["id"], tags=["refund"], assignee_id=None))

        # Dee already holds two open conversations (taken by hand): least busy skips her.
        for _ in range(2):
            conversation, _ = world.conversation(vip, assignee_id=world.fin_agent_id)
            ok(dee.post(f"/conversations/{conversation['id']}/take-over"))
        ids = {a.agent_id: name for a, name in ((dee, "dee"), (eve, "eve"), (fay, "fay"))}  # type: ignore[attr-defined]
        got = [ids[str(refund())] for _ in range(4)]
        assert sorted(got[:2]) == ["eve", "fay"]  # both at 0, Dee at 2
        assert sorted(got[2:]) == ["eve", "fay"]  # both at 1, Dee at 2
        # Loads now 2, 2, 2: one each, in round-robin order among equals.
        assert sorted(ids[str(refund())] for _ in range(3)) == ["dee", "eve", "fay"]

        # Fay steps away by hand; Eve's own capacity is lowered to the 3 she holds: only Dee,
        # at 3 of the team's 4, may take one more. Then nobody: it stays in the team's queue.
        ok(fay.put("/me/presence", json={"presence": "away"}))
        ok(admin.put(f"/agents/{eve.agent_id}/capacity", json={"capacity": 3}))  # type: ignore[attr-defined]
        assert refund() == dee.agent_id  # type: ignore[attr-defined]
        assert refund() is None
        queues = ok(dee.get("/team-queues"))
        assert queues == [{"team_id": team, "name": "Refunds", "open": 9, "waiting": 1}]

        # Fay back, but silent for longer than FINDESK_PRESENCE_AWAY_MINUTES: away all the same.
        go_online(fay)
        with server.db.transaction() as session:
            row = session.get(Agent, fay.agent_id)  # type: ignore[attr-defined]
            assert row is not None
            row.last_seen_at = utcnow() - timedelta(minutes=16)
        presence = ok(fay.get("/me/presence"))
        assert (presence["presence"], presence["effective"]) == ("online", "away")
        assert refund() is None
        go_online(fay)  # seen again
        assert refund() == fay.agent_id  # type: ignore[attr-defined]

        # A conversation from someone else matches no rule: not this team's.
        conversation, _ = world.conversation(assignee_id=world.fin_agent_id)
        answer = world.update(conversation["id"], tags=["refund"], assignee_id=None)
        assert assignee_of(answer) is None
        assert conversation_row(server, answer["id"]).team_id is None


def test_a_conversation_opened_for_a_person_is_routed_on_create(
    server: LiveServer, world: World, admin: httpx.Client, clean_rules: None
) -> None:
    """Fin opens conversations for itself (routed when it hands over); one opened with nobody
    assigned (a findesk without a Fin bot) is routed as it is created, in its transaction."""
    with agent_client(server, "Gus") as gus:
        go_online(gus)
        team = new_team(admin, "Email", [gus])
        email = [{"field": "channel", "op": "is", "value": "email"}]
        new_rule(admin, "Email channel", email, team_id=team)
        user = world.user()
        with server.db.transaction() as session:
            conversation, _, _ = conversations.open_conversation(
                session,
                user_id=user["id"],
                first=conversations.NewMessage(
                    author=conversations.Author("end_user", user["id"]), body="<p>Hello</p>"
                ),
                actor=SYSTEM,
                attributes={"channel": "Email"},
            )
            conversation_id = conversation.id
        row = conversation_row(server, conversation_id)
        assert (row.team_id, row.assignee_id) == (team, gus.agent_id)  # type: ignore[attr-defined]
        assert [e.kind for e in events(server, conversation_id)] == [
            "created",
            "routed",
            "team",
            "assigned",
        ]
