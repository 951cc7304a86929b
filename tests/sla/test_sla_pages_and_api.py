"""SLA policies through the agent API (admins write, every agent reads) and the administrators'
page (list, add, edit, reorder, delete; 403 for others; CSRF); the chip a handover shows in the
conversation's header and its queue row; the conversation's timers in the agent API; and the
checker that ``findesk serve`` runs, breaching a timer past due on its own. Both backends, real
HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from inbox.web_support import Person, Web, new_agent, sign_in, start_server
from sqlalchemy import select, update
from support.fin import World
from support.server import LiveServer

from findesk.agents.models import Agent
from findesk.audit.service import AuditFilter, list_entries
from findesk.conversations.models import ConversationEvent
from findesk.kit.timeutil import utcnow
from findesk.sla.models import SlaPolicy, SlaTimer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        request, request.param, Path(tmp_path_factory.mktemp("sla-pages")), sla_check_seconds=0.2
    )
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


@pytest.fixture
def clean(server: LiveServer) -> Iterator[None]:
    yield
    with server.db.transaction() as session:
        for policy in session.scalars(select(SlaPolicy)):
            session.delete(policy)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def policy_names(server: LiveServer) -> list[str]:
    with server.db.read_session() as session:
        return [
            p.name
            for p in session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id))
        ]


def test_the_agent_api_lists_to_agents_and_lets_admins_change_policies(
    server: LiveServer, clean: None
) -> None:
    admin = server.agent_http(f"api-admin-{time.time_ns()}@example.com", "Api Admin")
    agent = server.agent_http(f"api-agent-{time.time_ns()}@example.com", "Api Agent")
    with server.db.transaction() as session:
        from findesk.agents.models import Agent

        row = session.get(Agent, admin.agent_id)  # type: ignore[attr-defined]
        assert row is not None
        row.role = "admin"
    try:
        created = ok(
            admin.post(
                "/sla-policies",
                json={"name": "Urgent", "priority": "urgent", "first_response_minutes": 15},
            ),
            201,
        )
        assert created["escalation"] == "notify" and created["position"] == 0
        second = ok(
            admin.post("/sla-policies", json={"name": "Default", "resolution_minutes": 480}), 201
        )
        assert second["position"] == 1
        assert [p["name"] for p in ok(agent.get("/sla-policies"))] == ["Urgent", "Default"]
        assert ok(agent.get(f"/sla-policies/{created['id']}"))["first_response_minutes"] == 15

        # Agents read; only admins write.
        assert (
            agent.post("/sla-policies", json={"name": "Mine", "resolution_minutes": 1}).status_code
            == 403
        )
        assert agent.delete(f"/sla-policies/{created['id']}").status_code == 403
        # A policy needs a target; reassign needs a team that exists.
        assert admin.post("/sla-policies", json={"name": "Empty"}).status_code == 422
        refused = admin.post(
            "/sla-policies",
            json={"name": "Away", "resolution_minutes": 5, "escalation": "reassign"},
        )
        assert refused.status_code == 422
        patched = ok(
            admin.patch(
                f"/sla-policies/{created['id']}",
                json={"first_response_minutes": 10, "escalation": "raise_priority"},
            )
        )
        assert (patched["first_response_minutes"], patched["escalation"]) == (10, "raise_priority")
        ok(admin.delete(f"/sla-policies/{second['id']}"), 204)
        assert admin.get(f"/sla-policies/{second['id']}").status_code == 404
        assert policy_names(server) == ["Urgent"]
    finally:
        admin.close()
        agent.close()


def test_the_admin_page_adds_edits_reorders_and_deletes_policies(
    server: LiveServer, admin_web: Web, clean: None
) -> None:
    response = admin_web.post(
        "/inbox/admin/sla", {"name": "Slow", "resolution_minutes": "600", "escalation": "notify"}
    )
    assert response.status_code == 303
    admin_web.post("/inbox/admin/sla", {"name": "Fast", "first_response_minutes": "10"})
    page = admin_web.page("/inbox/admin/sla")
    assert [n.text.strip() for n in page.find_all("td", cls="policy-name")] == ["Slow", "Fast"]
    assert "Policy created." in page.text

    # Moved up: first.
    fast = next(p for p in page.find_all("tr", cls="policy") if "Fast" in p.text)
    fast_id = fast.attrs["data-policy-id"]
    admin_web.post(f"/inbox/admin/sla/{fast_id}/move", {"direction": "up"})
    assert policy_names(server) == ["Fast", "Slow"]

    # Edited through its form, filled in with what it has.
    form = admin_web.page("/inbox/admin/sla", edit=fast_id)
    assert form.find("input", id="policy-first").attrs["value"] == "10"
    admin_web.post(
        f"/inbox/admin/sla/{fast_id}",
        {"name": "Faster", "first_response_minutes": "5", "priority": "High"},
    )
    with server.db.read_session() as session:
        row = session.get(SlaPolicy, fast_id)
        assert row is not None
        assert (row.name, row.first_response_minutes, row.priority) == ("Faster", 5, "High")

    # Refused with a reason: no target.
    admin_web.post("/inbox/admin/sla", {"name": "Nothing"})
    assert "at least one target" in admin_web.page("/inbox/admin/sla").text
    assert policy_names(server) == ["Faster", "Slow"]

    admin_web.post(f"/inbox/admin/sla/{fast_id}/delete", {})
    assert policy_names(server) == ["Slow"]


def test_every_policy_change_is_in_the_audit_log(
    server: LiveServer, boss: Person, admin_web: Web, clean: None
) -> None:
    """Who changed which target, from where, with what it was: through the page and the API."""
    with server.db.read_session() as session:
        since = max(
            (e.id for e in list_entries(session, AuditFilter(), limit=1).entries), default=0
        )
    admin_web.post("/inbox/admin/sla", {"name": "Slow", "resolution_minutes": "600"})
    admin_web.post("/inbox/admin/sla", {"name": "Fast", "first_response_minutes": "10"})
    slow, fast = (p["id"] for p in sorted_policies(server))
    admin_web.post(f"/inbox/admin/sla/{fast}/move", {"direction": "up"})
    admin_web.post(f"/inbox/admin/sla/{fast}", {"name": "Fast", "first_response_minutes": "5"})
    admin_web.post("/inbox/admin/sla", {"name": "Nothing"})  # refused: nothing to log
    with server.agent_http(f"audit-{time.time_ns()}@example.com", "Ann Api") as api:
        with server.db.transaction() as session:
            session.execute(
                update(Agent).where(Agent.id == api.agent_id).values(role="admin")  # type: ignore[attr-defined]
            )
        ok(api.patch(f"/sla-policies/{slow}", json={"escalation": "raise_priority"}))
        ok(api.delete(f"/sla-policies/{slow}"), 204)
        api_email = ok(api.get("/me"))["email"]

    with server.db.read_session() as session:
        entries = [
            e
            for e in reversed(list(list_entries(session, AuditFilter(), limit=50).entries))
            if e.id > since and e.target_type == "sla_policy"
        ]
    assert [(e.action, e.actor_label, e.target_id) for e in entries] == [
        ("sla_policy.created", boss.email, slow),
        ("sla_policy.created", boss.email, fast),
        ("sla_policy.updated", boss.email, fast),  # moved up: both places changed
        ("sla_policy.updated", boss.email, slow),
        ("sla_policy.updated", boss.email, fast),
        ("sla_policy.updated", api_email, slow),
        ("sla_policy.deleted", api_email, slow),
    ]
    assert all(e.address for e in entries)
    created, _, moved, _, edited, escalation, deleted = (e.detail for e in entries)
    assert created["name"] == "Slow" and created["resolution_minutes"] == 600
    assert (moved["changed"], moved["was"]) == ({"position": 0}, {"position": 1})
    assert (edited["changed"], edited["was"]) == (
        {"first_response_minutes": 5},
        {"first_response_minutes": 10},
    )
    assert escalation["changed"] == {"escalation": "raise_priority"}
    assert deleted["name"] == "Slow" and deleted["escalation"] == "raise_priority"
    log = admin_web.page("/inbox/admin/audit", target=slow).text
    assert "SLA policy created" in log and "SLA policy deleted" in log


def sorted_policies(server: LiveServer) -> list[dict[str, str]]:
    with server.db.read_session() as session:
        rows = session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id))
        return [{"id": p.id, "name": p.name} for p in rows]


def test_agents_cannot_open_or_post_the_admin_page_and_forms_need_their_token(
    server: LiveServer, admin_web: Web, clean: None
) -> None:
    person = new_agent(server, "Al Agent")
    web = sign_in(server, person)
    try:
        assert web.get("/inbox/admin/sla").status_code == 403
        refused = web.post("/inbox/admin/sla", {"name": "Mine", "resolution_minutes": "5"})
        assert refused.status_code == 403
    finally:
        web.close()
    forged = admin_web.http.post(
        "/inbox/admin/sla", data={"name": "Forged", "resolution_minutes": "5"}
    )
    assert forged.status_code == 403
    assert policy_names(server) == []


def test_a_handover_shows_the_chip_and_the_timers_and_serve_breaches_it(
    server: LiveServer, admin_web: Web, clean: None
) -> None:
    admin_web.post(
        "/inbox/admin/sla",
        {"name": "Default", "first_response_minutes": "30", "resolution_minutes": "240"},
    )
    fin: World = server.fin_world()
    conversation, _ = fin.conversation(title="Where is my refund?")
    fin.hand_over(conversation["id"])
    cid = conversation["id"]

    page = admin_web.page(f"/inbox/conversations/{cid}")
    head = page.find("header", cls="conversation-head")
    chip = head.find("span", cls="sla")
    assert chip.attrs["data-sla"] == "ok"
    assert chip.text.strip() in ("First response in 30 min", "First response in 29 min")
    assert "data-due" in chip.attrs and chip.attrs["data-target-seconds"] == "1800"
    row = page.find("li", cls="conversation-item", **{"data-conversation-id": cid})
    assert row.find("span", cls="sla").attrs["data-sla"] == "ok"

    timers = ok(admin_web.http.get(f"/api/v1/conversations/{cid}/sla"))
    assert sorted((t["target"], t["state"]) for t in timers) == [
        ("first_response", "running"),
        ("resolution", "running"),
    ]

    # Past due (moved back in the database): the checker in serve breaches it, once.
    with server.db.transaction() as session:
        session.execute(
            update(SlaTimer)
            .where(SlaTimer.conversation_id == cid, SlaTimer.target == "first_response")
            .values(due_at=utcnow() - timedelta(minutes=5))
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = {
            t["target"]: t["state"]
            for t in ok(admin_web.http.get(f"/api/v1/conversations/{cid}/sla"))
        }
        if states["first_response"] == "breached":
            break
        time.sleep(0.1)
    assert states["first_response"] == "breached"
    time.sleep(0.5)  # a few more rounds of the checker: still one breach
    with server.db.read_session() as session:
        breaches = session.scalars(
            select(ConversationEvent).where(
                ConversationEvent.conversation_id == cid,
                ConversationEvent.kind == "sla_breached",
            )
        ).all()
    assert len(breaches) == 1
    conversation_page = admin_web.page(f"/inbox/conversations/{cid}")
    assert "SLA missed: first response" in conversation_page.text  # in the timeline
    chip = conversation_page.find("header", cls="conversation-head")
    shown = chip.find("span", cls="sla")
    assert shown.attrs["data-sla"] == "breached"
    assert shown.text.strip() == "First response overdue 5 min"
    history = ok(admin_web.http.get(f"/api/v1/conversations/{cid}/history"))
    assert any(e["kind"] == "sla_breached" for e in history["items"])
