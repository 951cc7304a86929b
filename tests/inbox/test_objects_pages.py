"""Custom objects in the inbox, over plain HTTP, on SQLite and on PostgreSQL: the conversation's
side panel shows the objects linked to its end user or to it as cards (title attribute, type, a
few attributes, escaped as the data they are), the newest five with the count and a link to
every one of them; the card list is one query however many objects the user has."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert
from support.fin import World
from support.server import LiveServer
from web_support import Web, new_agent, parse_html, sign_in, unique

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.objects import service as objects
from findesk.objects.models import ObjectInstance, ObjectUserLink

ORDER = {
    "name": "Order",
    "attributes": [
        {"name": "order_number", "type": "string", "label": "Order number"},
        {"name": "total", "type": "decimal", "label": "Total"},
        {"name": "paid", "type": "boolean", "label": "Paid"},
        {"name": "note", "type": "string", "label": "Note"},
        {"name": "items", "type": "integer", "label": "Items"},
    ],
    "title_attribute": "order_number",
}


@pytest.fixture(scope="module")
def web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Ada Agent"))
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def admin_web(server: LiveServer) -> Iterator[Web]:
    signed_in = sign_in(server, new_agent(server, "Ann Admin", role="admin"))
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.db.transaction() as session:
        admin = create_agent(
            session, email=f"admin-{uuid.uuid4().hex[:8]}@example.com", name="Ad", role="admin"
        )
        token = create_agent_token(session, admin)
    with httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json() if response.status_code != 204 else None


def new_type(api: httpx.Client) -> str:
    identifier = f"Order{uuid.uuid4().hex[:8]}"
    ok(api.post("/custom_object_types", json={"identifier": identifier, **ORDER}))
    return identifier


def conversation(world: World) -> tuple[str, str]:
    created, _ = world.conversation(title=unique("Parcel"), body="<p>Where is it?</p>")
    return str(created["id"]), str(created["user"]["id"])


def test_the_side_panel_shows_the_newest_objects_as_cards(
    web: Web, api: httpx.Client, world: World
) -> None:
    identifier = new_type(api)
    conversation_id, user_id = conversation(world)
    url = f"/custom_object_instances/{identifier}"
    for n in range(6):
        attributes = {"order_number": f"ORDER-{n}", "total": "9.50", "paid": n % 2 == 0}
        attributes["note"] = '<script>alert("x")</script><b>bold</b>'
        ok(api.post(url, json={"external_id": f"o{n}", "custom_attributes": attributes}))
        ok(api.put(f"{url}/o{n}/contacts/{user_id}"))
    # One of the conversation's own, without a title attribute's value: its external id shows.
    ok(api.post(url, json={"external_id": "no-title", "custom_attributes": {"items": 2}}))
    ok(api.put(f"{url}/no-title/conversations/{conversation_id}"))

    response = web.get(f"/inbox/conversations/{conversation_id}")
    assert response.status_code == 200
    assert "<script>alert" not in response.text and "<b>bold</b>" not in response.text
    panel = web.page(f"/inbox/conversations/{conversation_id}").find("section", "objects")
    assert panel.find("span", "count").text == "7"
    cards = panel.find_all("li", "object-card")
    titles = [c.find("p", "object-title").find("strong").text for c in cards]
    assert titles == ["no-title", "ORDER-5", "ORDER-4", "ORDER-3", "ORDER-2"]
    assert all(c.find("span", "object-type").text == "Order" for c in cards)
    fifth = cards[1]
    labels = [dt.text for dt in fifth.find_all("dt")]
    values = [dd.text for dd in fifth.find_all("dd")]
    assert labels == ["Total", "Paid", "Note"]  # the first three after the title
    assert values == ["9.50", "No", '<script>alert("x")</script><b>bold</b>']
    link = panel.find("a")
    assert link.attrs["href"] == f"/inbox/conversations/{conversation_id}/objects"
    assert link.text == "Show all 7 objects"

    every = web.page(f"/inbox/conversations/{conversation_id}/objects")
    listed = [c.attrs["data-object-id"] for c in every.find_all("li", "object-card")]
    assert len(listed) == 7 and every.first("a", rel="next") is None


def test_no_objects_no_section(web: Web, world: World) -> None:
    conversation_id, _ = conversation(world)
    page = web.page(f"/inbox/conversations/{conversation_id}")
    assert page.first("section", "objects") is None


def test_the_cards_of_a_user_with_1000_objects_are_one_query(
    server: LiveServer, web: Web, api: httpx.Client, world: World
) -> None:
    identifier = new_type(api)
    conversation_id, user_id = conversation(world)
    type_id = ok(api.get(f"/custom_object_types/{identifier}"))["id"]
    with server.db.transaction() as session:
        rows = [
            {"id": f"coi_bulk{n:05d}{uuid.uuid4().hex[:8]}", "type_id": type_id,
             "external_id": f"b{n}", "custom_attributes": {"order_number": f"B-{n}"}}
            for n in range(1000)
        ]  # fmt: skip
        session.execute(insert(ObjectInstance), rows)
        session.execute(
            insert(ObjectUserLink), [{"user_id": user_id, "instance_id": r["id"]} for r in rows]
        )
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with server.db.read_session() as session:
        # This session's connection only: the server in this process reads its live feed
        # meanwhile, on connections of its own.
        connection = session.connection()
        event.listen(connection, "before_cursor_execute", capture)
        try:
            cards = objects.cards_for(session, user_id=user_id, conversation_id=conversation_id)
        finally:
            event.remove(connection, "before_cursor_execute", capture)
    assert cards.total == 1000 and len(cards.cards) == 5
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    panel = web.page(f"/inbox/conversations/{conversation_id}").find("section", "objects")
    assert len(panel.find_all("li", "object-card")) == 5
    assert panel.find("a").text == "Show all 1000 objects"
    second = web.page(f"/inbox/conversations/{conversation_id}/objects", page="2")
    assert len(second.find_all("li", "object-card")) == 50
    assert second.find("a", rel="prev") and second.find("a", rel="next")


# --- the administrators' page of types -------------------------------------------------------


def test_an_administrator_defines_and_deletes_a_type_from_the_inbox(
    admin_web: Web, web: Web
) -> None:
    identifier = f"Device{uuid.uuid4().hex[:6]}"
    made = admin_web.post(
        "/inbox/admin/objects",
        {
            "identifier": identifier,
            "name": "Device",
            "attributes": "serial string Serial number\n\nbought_on date Bought on\n",
            "title_attribute": "serial",
        },
    )
    assert made.status_code == 303 and made.headers["location"] == "/inbox/admin/objects"
    page = admin_web.page("/inbox/admin/objects")
    assert page.find("p", "notice").text == f"Type {identifier} created."
    row = page.find("tr", "object-type-item", data_identifier=identifier)
    assert "Serial number (string, title)" in row.text and "Bought on (date)" in row.text
    for form, says in (
        ({"identifier": "1bad"}, "identifier"),
        ({"identifier": "Ok", "attributes": "lonely"}, "line 1"),
        ({"identifier": "Ok", "attributes": "a money"}, "attributes"),
        ({"identifier": identifier}, "exists already"),
    ):
        refused = admin_web.post("/inbox/admin/objects", form)
        assert refused.status_code == 303
        assert says in admin_web.page("/inbox/admin/objects").find("p", "error").text
    # Agents who are not administrators: neither the page nor the forms.
    assert web.get("/inbox/admin/objects").status_code == 403
    assert web.post("/inbox/admin/objects", {"identifier": "Mine"}).status_code == 403
    assert web.post(f"/inbox/admin/objects/{identifier}/delete").status_code == 403
    gone = admin_web.post(f"/inbox/admin/objects/{identifier}/delete")
    assert gone.status_code == 303
    page = admin_web.page("/inbox/admin/objects")
    assert page.first("tr", "object-type-item", data_identifier=identifier) is None
    assert parse_html(admin_web.get("/inbox/admin").text).find("a", href="/inbox/admin/objects")
