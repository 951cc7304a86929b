"""Routing conditions on the conversation's ticket and on the custom objects linked to it or to
its end user: Fin's handovers routed by a ticket's type, state and attributes and by an order's
fields; "test this rule" agreeing with what routing did; clear 422s for fields that cannot be;
and every admin change to teams and rules in the audit log. Both backends, real HTTP (Fin API,
agent API, the inbox's forms)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from inbox.web_support import Person, Web, new_agent, parse_html, sign_in, start_server
from pydantic import TypeAdapter
from routing_support import agent_client, conversation_row, events, go_online, ok
from support.fin import World
from support.server import LiveServer
from support.sql import statements_sent

from findesk.audit.service import AuditFilter, list_entries
from findesk.routing import service as routing
from findesk.routing.schemas import Condition


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, Path(tmp_path_factory.mktemp("routecond")))
    yield live
    live.stop()


def new_team(admin: httpx.Client, members: list[httpx.Client]) -> str:
    body = {"name": f"Team {uuid.uuid4().hex[:8]}", "member_ids": [m.agent_id for m in members]}  # type: ignore[attr-defined]
    return str(ok(admin.post("/teams", json=body), 201)["id"])


def new_rule(admin: httpx.Client, conditions: list[dict[str, Any]], **actions: Any) -> str:
    body = {"name": f"Rule {uuid.uuid4().hex[:6]}", "conditions": conditions, "actions": actions}
    return str(ok(admin.post("/routing-rules", json=body), 201)["id"])


def fin_conversation(world: World, user: dict[str, Any] | None = None) -> str:
    """A conversation Fin opened and answered (Fin owns it)."""
    conversation, _ = world.conversation(user, assignee_id=world.fin_agent_id)
    world.fin_says(conversation["id"])
    return str(conversation["id"])


def hand_over(world: World, conversation_id: str) -> None:
    world.update(conversation_id, assignee_id=None)


def routed_by(server: LiveServer, conversation_id: str) -> str | None:
    found = [e for e in events(server, conversation_id) if e.kind == "routed"]
    return str(found[-1].to_value) if found else None


def previewed(admin: httpx.Client, rule_id: str, among: list[str]) -> list[str]:
    """Of ``among``, those "test this rule" says the rule's conditions match."""
    rule = ok(admin.get(f"/routing-rules/{rule_id}"))
    answer = ok(
        admin.post("/routing-rules/preview", json={"conditions": rule["conditions"], "recent": 500})
    )
    matched = {m["id"] for m in answer["matches"]}
    return [c for c in among if c in matched]


def test_a_handover_goes_where_its_ticket_says(
    server: LiveServer, world: World, admin: httpx.Client, clean_rules: None
) -> None:
    refund = ok(
        admin.post(
            "/ticket_types",
            json={
                "name": f"Refund {uuid.uuid4().hex[:6]}",
                "ticket_type_attributes": [
                    {
                        "name": "reason",
                        "data_type": "list",
                        "list_items": [{"label": "Damaged"}, {"label": "Late"}],
                    },
                    {"name": "amount", "data_type": "number"},
                ],
            },
        )
    )
    (reason,) = [a for a in refund["ticket_type_attributes"]["data"] if a["name"] == "reason"]
    item = {i["label"]: i["id"] for i in reason["input_options"]["list_options"]}
    with ExitStack() as stack:
        ann = stack.enter_context(agent_client(server, "Ann"))
        bob = stack.enter_context(agent_client(server, "Bob"))
        for agent in (ann, bob):
            go_online(agent)
        refunds, damages = new_team(admin, [ann]), new_team(admin, [bob])
        # Tried first: a ticket attribute (a list one, by its item's label) and a number.
        damaged = new_rule(
            admin,
            [
                {"field": "ticket.reason", "op": "is", "value": "damaged"},
                {"field": "ticket.amount", "op": "gt", "value": 50},
            ],
            team_id=damages,
        )
        # The ticket's type (its name) and state (its category).
        by_type = new_rule(
            admin,
            [
                {"field": "ticket.type", "op": "is", "value": refund["name"]},
                {"field": "ticket.state", "op": "is", "value": "submitted"},
            ],
            team_id=refunds,
            priority="High",
        )
        no_ticket = new_rule(admin, [{"field": "ticket", "op": "not_exists"}], add_tags=["chat"])

        tickets: dict[str, str] = {}

        def converted(**attributes: Any) -> str:
            conversation_id = fin_conversation(world)
            body = {
                "ticket_type_id": refund["id"],
                "attributes": {"_default_title_": "My refund", **attributes},
            }
            ticket = ok(admin.post(f"/conversations/{conversation_id}/convert", json=body))
            tickets[conversation_id] = ticket["id"]
            hand_over(world, conversation_id)
            return conversation_id

        late = converted(reason=item["Late"], amount=80)
        broken = converted(reason=item["Damaged"], amount=80)
        cheap = converted(reason=item["Damaged"], amount=20)
        plain = fin_conversation(world)
        hand_over(world, plain)

        row = conversation_row(server, late)
        assert (row.team_id, row.assignee_id) == (refunds, ann.agent_id)  # type: ignore[attr-defined]
        assert row.attributes["priority"] == "High"
        assert routed_by(server, late) == by_type
        row = conversation_row(server, broken)
        assert (row.team_id, row.assignee_id) == (damages, bob.agent_id)  # type: ignore[attr-defined]
        assert routed_by(server, broken) == damaged
        assert routed_by(server, cheap) == by_type  # 20 is not over 50
        row = conversation_row(server, plain)
        assert (row.team_id, row.tags, routed_by(server, plain)) == (None, ["chat"], no_ticket)

        # "Test this rule" agrees: each rule's conditions match what it routed (and the
        # type rule those the damage rule took first).
        ours = [late, broken, cheap, plain]
        assert previewed(admin, damaged, ours) == [broken]
        assert previewed(admin, by_type, ours) == [late, broken, cheap]
        assert previewed(admin, no_ticket, ours) == [plain]

        # Once resolved, the ticket's state is "resolved" (its category and label): the rule on
        # "submitted" no longer matches it.
        states = ok(admin.get("/ticket_states"))["data"]
        (resolved,) = [s["id"] for s in states if s["category"] == "resolved"]
        ok(admin.put(f"/tickets/{tickets[late]}", json={"ticket_state_id": resolved}))
        assert previewed(admin, by_type, ours) == [broken, cheap]


def test_a_handover_goes_where_the_custom_objects_say(
    server: LiveServer, world: World, admin: httpx.Client, clean_rules: None
) -> None:
    order = f"Order{uuid.uuid4().hex[:6]}"
    ok(
        admin.post(
            "/custom_object_types",
            json={
                "identifier": order,
                "attributes": [
                    {"name": "status", "type": "string"},
                    {"name": "total", "type": "decimal"},
                ],
            },
        ),
        201,
    )
    url = f"/custom_object_instances/{order}"

    def new_order(external_id: str, status: str, total: str) -> str:
        body = {"external_id": external_id, "custom_attributes": {"status": status, "total": total}}
        return str(ok(admin.post(url, json=body))["id"])

    with ExitStack() as stack:
        cid = stack.enter_context(agent_client(server, "Cid"))
        dot = stack.enter_context(agent_client(server, "Dot"))
        for agent in (cid, dot):
            go_online(agent)
        logistics, claims = new_team(admin, [cid]), new_team(admin, [dot])
        late_and_big = new_rule(
            admin,
            [
                {"field": f"object.{order}.status", "op": "is", "value": "Delayed"},
                {"field": f"object.{order}.total", "op": "gt", "value": 100},
            ],
            team_id=logistics,
        )
        lost = new_rule(
            admin,
            [{"field": f"object.{order}.status", "op": "in", "value": ["lost"]}],
            team_id=claims,
        )
        none = new_rule(
            admin, [{"field": f"object.{order}", "op": "not_exists"}], add_tags=["no-order"]
        )

        # Orders linked to the end user: one of them delayed and over 100.
        ulla = world.user(name="Ulla")
        for external_id, status, total in (("u1", "delayed", "250.00"), ("u2", "shipped", "5")):
            ok(admin.put(f"{url}/{new_order(external_id, status, total)}/contacts/{ulla['id']}"))
        by_user = fin_conversation(world, ulla)
        # An order linked to one conversation only: that one is a claim, the user's next is not.
        vic = world.user(name="Vic")
        by_conversation = fin_conversation(world, vic)
        ok(admin.put(f"{url}/{new_order('v1', 'Lost', '30')}/conversations/{by_conversation}"))
        vic_again = fin_conversation(world, vic)
        # Delayed but small (a decimal compared as the number it says): no rule's team.
        wes = world.user(name="Wes")
        ok(admin.put(f"{url}/{new_order('w1', 'delayed', '99.99')}/contacts/{wes['id']}"))
        small = fin_conversation(world, wes)
        ours = [by_user, by_conversation, vic_again, small]
        for conversation_id in ours:
            hand_over(world, conversation_id)

        row = conversation_row(server, by_user)
        assert (row.team_id, row.assignee_id) == (logistics, cid.agent_id)  # type: ignore[attr-defined]
        assert routed_by(server, by_user) == late_and_big
        row = conversation_row(server, by_conversation)
        assert (row.team_id, row.assignee_id) == (claims, dot.agent_id)  # type: ignore[attr-defined]
        assert routed_by(server, by_conversation) == lost
        row = conversation_row(server, vic_again)
        assert (row.team_id, row.tags, routed_by(server, vic_again)) == (None, ["no-order"], none)
        row = conversation_row(server, small)
        assert (row.team_id, row.tags, routed_by(server, small)) == (None, [], None)

        assert previewed(admin, late_and_big, ours) == [by_user]
        assert previewed(admin, lost, ours) == [by_conversation]
        assert previewed(admin, none, ours) == [vic_again]


def test_fields_that_cannot_be_are_refused_with_a_clear_422(
    admin: httpx.Client, clean_rules: None
) -> None:
    order = f"Order{uuid.uuid4().hex[:6]}"
    body = {"identifier": order, "attributes": [{"name": "status", "type": "string"}]}
    ok(admin.post("/custom_object_types", json=body), 201)

    def refused(condition: dict[str, Any], *, preview: bool = False) -> str:
        if preview:
            response = admin.post("/routing-rules/preview", json={"conditions": [condition]})
        else:
            body = {"name": "R", "conditions": [condition], "actions": {"priority": "High"}}
            response = admin.post("/routing-rules", json=body)
        assert response.status_code == 422, response.text
        return response.text

    assert "ticket takes exists or not_exists" in refused(
        {"field": "ticket", "op": "is", "value": "x"}
    )
    assert "object.<type>.<field>" in refused(
        {"field": f"object.{order}.status.more", "op": "is", "value": "x"}
    )
    assert "No custom object type 'Nope'" in refused(
        {"field": "object.Nope.status", "op": "is", "value": "x"}
    )
    assert f"The custom object type '{order}' has no attribute 'colour'" in refused(
        {"field": f"object.{order}.colour", "op": "is", "value": "x"}
    )
    assert "No custom object type 'Nope'" in refused(
        {"field": "object.Nope", "op": "exists"}, preview=True
    )
    assert "No ticket type has an attribute 'nonexistent'" in refused(
        {"field": "ticket.nonexistent", "op": "exists"}
    )
    assert ok(admin.get("/routing-rules")) == []
    # What exists is taken, in the API and in a patch.
    rule = new_rule(
        admin, [{"field": f"object.{order}.status", "op": "is", "value": "x"}], priority="1"
    )
    patch = {"conditions": [{"field": f"object.{order}.size", "op": "exists"}]}
    assert admin.patch(f"/routing-rules/{rule}", json=patch).status_code == 422


def test_the_admin_form_takes_ticket_and_object_lines_and_every_change_is_audited(
    server: LiveServer, world: World, admin: httpx.Client, clean_rules: None
) -> None:
    boss: Person = new_agent(server, "Bea Boss", role="admin")
    web: Web = sign_in(server, boss)
    order = f"Order{uuid.uuid4().hex[:6]}"
    body = {"identifier": order, "attributes": [{"name": "status", "type": "string"}]}
    ok(admin.post("/custom_object_types", json=body), 201)
    try:
        page = web.page("/inbox/admin/routing")
        assert f"object.{order}.status" in page.find("details", cls="routing-fields").text
        # A bad line: the form again with what is wrong, nothing saved.
        bad = web.post(
            "/inbox/admin/routing",
            {"name": "Orders", "conditions": "object.Parcel.status is lost", "priority": "High"},
        )
        assert bad.status_code == 422
        assert "No custom object type 'Parcel'" in parse_html(bad.text).find("p", cls="error").text
        # "Test this rule" with an object line, then the rule saved from the form.
        user = world.user()
        conversation_id = fin_conversation(world, user)
        instance = ok(
            admin.post(
                f"/custom_object_instances/{order}",
                json={"external_id": "o1", "custom_attributes": {"status": "lost"}},
            )
        )
        ok(admin.put(f"/custom_object_instances/{order}/{instance['id']}/contacts/{user['id']}"))
        lines = f"object.{order}.status is LOST\nticket not_exists"
        tested = web.post("/inbox/admin/routing/preview", {"name": "Orders", "conditions": lines})
        assert tested.status_code == 200
        matches = parse_html(tested.text).find("ul", cls="preview-matches")
        assert [li.attrs["data-conversation-id"] for li in matches.find_all("li")] == [
            conversation_id
        ]
        saved = web.post(
            "/inbox/admin/routing", {"name": "Orders", "conditions": lines, "priority": "High"}
        )
        assert saved.status_code == 303
        (rule,) = ok(admin.get("/routing-rules"))
        assert rule["conditions"] == [
            {"field": f"object.{order}.status", "op": "is", "value": "LOST"},
            {"field": "ticket", "op": "not_exists", "value": None},
        ]
        shown = web.page("/inbox/admin/routing").find("tr", cls="rule").text
        assert f"object.{order}.status is LOST" in shown and "ticket not_exists" in shown
        hand_over(world, conversation_id)
        assert conversation_row(server, conversation_id).attributes["priority"] == "High"
        assert web.post(f"/inbox/admin/routing/{rule['id']}/toggle").status_code == 303

        # Teams and rules changed through the agent API.
        with agent_client(server, "Mel") as mel:
            team = new_team(admin, [])
            ok(admin.patch(f"/teams/{team}", json={"capacity_default": 3}))
            ok(admin.put(f"/teams/{team}/members/{mel.agent_id}"))  # type: ignore[attr-defined]
            ok(admin.delete(f"/teams/{team}/members/{mel.agent_id}"))  # type: ignore[attr-defined]
            ok(admin.put(f"/agents/{mel.agent_id}/capacity", json={"capacity": 2}))  # type: ignore[attr-defined]
            second = new_rule(admin, [{"field": "tag", "op": "is", "value": "x"}], team_id=team)
            ok(admin.patch(f"/routing-rules/{second}", json={"position": 0}))  # reordered
            ok(admin.delete(f"/routing-rules/{second}"), 204)
            ok(admin.delete(f"/teams/{team}"), 204)
            mel_id = mel.agent_id  # type: ignore[attr-defined]
    finally:
        web.close()

    with server.db.read_session() as session:
        entries = list(reversed(list_entries(session, AuditFilter(), limit=30).entries))
    admin_email = ok(admin.get("/me"))["email"]
    mine = [
        (e.action, e.actor_label, e.target_id)
        for e in entries
        if e.action.startswith(("team.", "routing_rule.", "agent.capacity"))
    ]
    assert mine[-11:] == [
        ("routing_rule.created", boss.email, rule["id"]),
        ("routing_rule.updated", boss.email, rule["id"]),
        ("team.created", admin_email, team),
        ("team.updated", admin_email, team),
        ("team.member_added", admin_email, team),
        ("team.member_removed", admin_email, team),
        ("agent.capacity_set", admin_email, mel_id),
        ("routing_rule.created", admin_email, second),
        ("routing_rule.updated", admin_email, second),
        ("routing_rule.deleted", admin_email, second),
        ("team.deleted", admin_email, team),
    ]
    by_key = {(e.action, e.target_id): e for e in entries}
    created = by_key[("routing_rule.created", rule["id"])]
    assert created.address is not None  # from the form, with the admin's address
    assert created.detail["conditions"] == rule["conditions"]
    toggled = by_key[("routing_rule.updated", rule["id"])].detail
    assert (toggled["changed"], toggled["was"]) == ({"enabled": False}, {"enabled": True})
    moved = by_key[("routing_rule.updated", second)].detail
    assert moved["changed"] == {"position": 0}
    assert by_key[("team.updated", team)].detail["changed"] == {"capacity_default": 3}
    assert by_key[("team.member_added", team)].detail["agent_id"] == mel_id
    assert by_key[("agent.capacity_set", mel_id)].detail["capacity"] == 2

    # The audit page shows them, by their names.
    web = sign_in(server, boss)
    try:
        log = web.page("/inbox/admin/audit", target=second).text
        assert "Routing rule created" in log and "Routing rule deleted" in log
    finally:
        web.close()


def test_tickets_and_objects_are_read_once_per_evaluation_whatever_the_rules_and_conversations(
    server: LiveServer, world: World, admin: httpx.Client
) -> None:
    """ "Test this rule" over many conversations (and routing over many rules) reads the tickets
    in one query and the linked objects in two; with no such condition, not at all."""
    order = f"Order{uuid.uuid4().hex[:6]}"
    body = {"identifier": order, "attributes": [{"name": "status", "type": "string"}]}
    ok(admin.post("/custom_object_types", json=body), 201)
    for _ in range(6):
        fin_conversation(world)
    conditions: list[dict[str, Any]] = [
        {"field": "ticket.type", "op": "is", "value": "Refund"},
        {"field": "ticket", "op": "exists"},
        {"field": f"object.{order}.status", "op": "is", "value": "lost"},
        {"field": f"object.{order}", "op": "exists"},
    ]
    adapter: TypeAdapter[list[Condition]] = TypeAdapter(list[Condition])

    def linked_reads(given: list[dict[str, Any]]) -> tuple[int, int, int]:
        with statements_sent(server.db.engine) as sent, server.db.read_session() as session:
            examined, _ = routing.preview(session, adapter.validate_python(given), 500)
        reads = [s for s, _ in sent if "FROM tickets" in s or "custom_object_" in s]
        tickets = sum("FROM tickets" in s for s in reads)
        # (the check that the object type exists reads custom_object_types once per condition)
        objects = sum("custom_object_instances" in s for s in reads)
        return examined, tickets, objects

    examined, tickets, objects = linked_reads(conditions)
    assert examined >= 6
    assert (tickets, objects) == (1, 2)
    assert linked_reads(conditions * 5)[1:] == (1, 2)
    assert linked_reads([{"field": "tag", "op": "is", "value": "x"}])[1:] == (0, 0)
