"""The lookups in the inbox, over plain HTTP, on SQLite and on PostgreSQL: an administrator defines
a lookup (a mistake is shown on the form), issues a token shown once with the URL template, Fin's
calls with it work until it is revoked; a call made for a conversation is told in its timeline
("Fin looked up order A-1042: shipped") and reaches the inbox's live stream."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.fin import World
from support.server import LiveServer
from web_support import Web, new_agent, parse_html, sign_in

from findesk.agents.models import Agent
from findesk.audit.models import AuditEntry
from findesk.live import service as live

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lookups"))
from lookup_support import Caller, admin, order, order_type, people

LOOKUPS = "/inbox/admin/lookups"


@pytest.fixture(scope="module")
def admin_web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Ann Admin", role="admin"))
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def boss(server: LiveServer) -> Agent:
    return admin(server)


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def form(name: str, object_type: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Finds one of the end user's orders by its number",
        "kind": "object_by_external_id",
        "object_type": object_type,
        "inputs": "order_id string required The order's number, such as A-1042",
        "fields": "status\nemail redacted",
        "user_scoped": "on",
        "direct_fin_usage": "on",
        "audiences": ["users", "leads"],
        "rate_limit_per_minute": "100",
        "enabled": "on",
        **changes,
    }


def create(admin_web: Web, data: dict[str, Any]) -> str:
    response = admin_web.post(LOOKUPS, data)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{LOOKUPS}/lkp_")
    return location.rsplit("/", 1)[1]


def issue(admin_web: Web, lookup_id: str) -> tuple[str, str]:
    """Issue a token through the page: (plain token, URL template shown with it)."""
    response = admin_web.post(f"{LOOKUPS}/{lookup_id}/tokens", {"label": "Intercom"})
    assert response.status_code == 200, response.text
    shown = parse_html(response.text).find("div", "new-token")
    return shown.find("span", "token-value").text, shown.find("code", "url-template").text


def test_an_admin_defines_a_lookup_and_its_token_works_until_revoked(
    server: LiveServer, admin_web: Web, world: World, boss: Agent, http: httpx.Client
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    order(server, identifier, "A-1042", user, status="shipped", email="jane.doe@example.com")
    lookup_id = create(admin_web, form("Order status", identifier))

    page = admin_web.page(f"{LOOKUPS}/{lookup_id}")
    assert page.find("h1").text.strip() == "Order status"
    assert page.first("div", "new-token") is None

    token, template = issue(admin_web, lookup_id)
    assert token.startswith("flk_")
    assert template == (
        f"{server.base_url}/api/connectors/{lookup_id}?order_id={{{{order_id}}}}"
        "&user_id={{user_id}}&conversation_id={{conversation_id}}"
    )
    call = Caller(http, lookup_id, token)
    answered = call(order_id="A-1042", user_id=user)
    assert answered.json() == {"found": True, "order": {"id": "A-1042", "status": "shipped",
                                                        "email": "****.com"}}  # fmt: skip

    # Shown once: the page never shows it again, only its last four characters.
    again = admin_web.get(f"{LOOKUPS}/{lookup_id}")
    assert token not in again.text
    row = parse_html(again.text).find("tr", "lookup-token")
    assert row.find("code").text == f"…{token[-4:]}"
    token_id = row.attrs["data-token-id"]

    revoked = admin_web.post(f"{LOOKUPS}/{lookup_id}/tokens/{token_id}/revoke")
    assert revoked.status_code == 303
    assert call(order_id="A-1042", user_id=user).status_code == 401
    assert "revoked" in admin_web.page(f"{LOOKUPS}/{lookup_id}").find("tr", "lookup-token").text
    with server.db.read_session() as session:
        logged = session.scalars(
            select(AuditEntry).where(AuditEntry.target_id == token_id).order_by(AuditEntry.id)
        ).all()
    assert [(e.action, e.actor_agent_id) for e in logged] == [
        ("lookup_token.issued", admin_web.person.id),  # type: ignore[union-attr]
        ("lookup_token.revoked", admin_web.person.id),  # type: ignore[union-attr]
    ]
    assert token not in repr([e.detail for e in logged])

    listed = admin_web.page(LOOKUPS).find("tr", "lookup-item", data_lookup_id=lookup_id)
    assert listed.find("td", "lookup-calls").text == "2"
    assert listed.find("td", "lookup-errors").text == "1"
    last = listed.find_all("span", "lookup-last-call")
    assert [c.attrs["data-status"] for c in last] == ["401", "200"]
    assert "order A-1042: shipped" in last[1].text
    calls = admin_web.page(f"{LOOKUPS}/{lookup_id}").find_all("tr", "lookup-call")
    assert [c.attrs["data-status"] for c in calls] == ["401", "200"]
    assert "order A-1042: shipped" in calls[1].text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"object_type": "NoSuchType"}, "There is no object type 'NoSuchType'."),
        ({"fields": "status\nweight"}, "has no attribute 'weight' to return."),
        ({"inputs": "Order-Id string"}, "The lookup is not valid: inputs 0 name"),
        ({"inputs": "user_id string"}, "An input may not be named 'user_id'"),
        ({"kind": "object_by_attribute", "attribute": "colour"}, "has no attribute 'colour'."),
        ({"audiences": ["robots"]}, "The lookup is not valid: audiences 0"),
    ],
)
def test_a_mistake_is_shown_on_the_form_with_what_was_typed(
    server: LiveServer, admin_web: Web, boss: Agent, changes: dict[str, Any], message: str
) -> None:
    identifier = order_type(server, boss)
    response = admin_web.post(LOOKUPS, {**form("Typo lookup", identifier), **changes})
    assert response.status_code == 422
    page = parse_html(response.text)
    assert message in page.find("p", "error").text
    assert page.find("input", id="lookup-name").attrs["value"] == "Typo lookup"
    assert "Typo lookup" not in admin_web.page(LOOKUPS).text


def test_edit_disable_and_delete(
    server: LiveServer, admin_web: Web, boss: Agent, world: World, http: httpx.Client
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    order(server, identifier, "E-1", user, status="late", email="someone@example.com")
    lookup_id = create(admin_web, form("Editable", identifier))
    token, _ = issue(admin_web, lookup_id)
    call = Caller(http, lookup_id, token)

    edit = admin_web.page(f"{LOOKUPS}/{lookup_id}/edit")
    assert edit.find("textarea", id="lookup-fields").text == "status email redacted"
    saved = admin_web.post(f"{LOOKUPS}/{lookup_id}", form("Editable", identifier, fields="email"))
    assert saved.status_code == 303
    changed = call(order_id="E-1", user_id=user).json()["order"]
    assert changed == {"id": "E-1", "email": "someone@example.com"}

    assert admin_web.post(f"{LOOKUPS}/{lookup_id}/disable").status_code == 303
    assert call(order_id="E-1", user_id=user).status_code == 404
    assert admin_web.post(f"{LOOKUPS}/{lookup_id}/enable").status_code == 303
    assert call(order_id="E-1", user_id=user).status_code == 200
    assert admin_web.post(f"{LOOKUPS}/{lookup_id}/delete").status_code == 303
    assert admin_web.get(f"{LOOKUPS}/{lookup_id}").status_code == 404
    assert call(order_id="E-1", user_id=user).status_code == 404


def test_only_administrators_and_only_with_the_csrf_token(
    server: LiveServer, web: Web, admin_web: Web, boss: Agent
) -> None:
    assert web.get(LOOKUPS).status_code == 403
    assert web.post(LOOKUPS, form("Agent's", order_type(server, boss))).status_code == 403
    forged = admin_web.post(LOOKUPS, form("Forged", order_type(server, boss)), csrf=False)
    assert forged.status_code == 403
    assert "Forged" not in admin_web.page(LOOKUPS).text
    admin_page = admin_web.page("/inbox/admin")
    assert any(a.attrs.get("href") == LOOKUPS for a in admin_page.find_all("a"))


def read_changes(web: Web, after: int, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    headers = {"Last-Event-ID": str(after)}
    with web.http.stream("GET", "/inbox/live", headers=headers, timeout=20) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == count:
                    break
    return events


def test_a_call_for_a_conversation_is_told_in_its_timeline_and_live(
    server: LiveServer, web: Web, admin_web: Web, boss: Agent, world: World, http: httpx.Client
) -> None:
    identifier = order_type(server, boss)
    user, _, conversation = people(world)
    order(server, identifier, "A-1042", user, status="shipped", email="jane.doe@example.com")
    lookup_id = create(admin_web, form("Order for timeline", identifier))
    token, _ = issue(admin_web, lookup_id)
    call = Caller(http, lookup_id, token)
    with server.db.read_session() as session:
        last = live.last_id(session)

    assert call(order_id="A-1042", user_id=user, conversation_id=conversation).status_code == 200
    assert call(order_id="A-9", user_id=user, conversation_id=conversation).status_code == 200
    hostile = "<img src=x onerror=alert(1)>"
    assert call(order_id=hostile, user_id=user, conversation_id=conversation).status_code == 200

    changes = read_changes(web, last, 3)
    assert [(c["conversation_id"], c["kind"], c["actor"]) for c in changes] == [
        (conversation, "lookup", "fin"),
        (conversation, "lookup", "fin"),
        (conversation, "lookup", "fin"),
    ]
    page = web.page(f"/inbox/conversations/{conversation}")
    told = [
        e.find("span", "event-text").text for e in page.find_all("li", "event", data_kind="lookup")
    ]
    assert told == [
        "Fin looked up order A-1042: shipped",
        "Fin looked up order A-9: found nothing",
        f"Fin looked up order {hostile}: found nothing",  # as text
    ]
    assert hostile not in web.get(f"/inbox/conversations/{conversation}").text
