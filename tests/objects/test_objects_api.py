"""Custom objects through the agent API, against a live server on SQLite and on PostgreSQL:
types (administrators only), instances in Intercom's shapes and its `error.list` errors, links
to end users and conversations, and the list filtered by them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.fin import World
from support.server import LiveServer

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token

ORDER = {
    "name": "Order",
    "attributes": [
        {"name": "order_number", "type": "string", "label": "Order number"},
        {"name": "total", "type": "decimal", "label": "Total"},
        {"name": "items", "type": "integer"},
        {"name": "paid", "type": "boolean"},
        {"name": "shipped_on", "type": "date"},
        {"name": "paid_at", "type": "datetime"},
    ],
    "title_attribute": "order_number",
}


def _client(server: LiveServer, role: str = "agent") -> httpx.Client:
    with server.db.transaction() as session:
        agent = create_agent(
            session, email=f"{role}-{uuid.uuid4().hex[:8]}@example.com", name="Ada", role=role
        )
        token = create_agent_token(session, agent)
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "admin") as client:
        yield client


@pytest.fixture(scope="module")
def agent(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server) as client:
        yield client


@pytest.fixture(scope="module")
def fin_side(server: LiveServer) -> World:
    return server.fin_world()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


def intercom_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Intercom's `error.list`: one error with this code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error.list" and isinstance(body["request_id"], str)
    assert [e["code"] for e in body["errors"]] == [code], body
    return dict(body["errors"][0])


def new_type(admin: httpx.Client, **changes: Any) -> str:
    identifier = f"Order{uuid.uuid4().hex[:8]}"
    ok(admin.post("/custom_object_types", json={"identifier": identifier, **ORDER, **changes}), 201)
    return identifier


# --- types ------------------------------------------------------------------------------------


def test_an_administrator_defines_a_type_and_changes_it(admin: httpx.Client) -> None:
    identifier = f"Sub{uuid.uuid4().hex[:6]}"
    created = ok(admin.post("/custom_object_types", json={"identifier": identifier, **ORDER}), 201)
    assert created["identifier"] == identifier and created["name"] == "Order"
    assert created["title_attribute"] == "order_number" and created["instance_count"] == 0
    assert [a["type"] for a in created["attributes"]][:3] == ["string", "decimal", "integer"]
    assert identifier in [t["identifier"] for t in ok(admin.get("/custom_object_types"))]
    patched = ok(
        admin.patch(
            f"/custom_object_types/{identifier}",
            json={"name": "Subscription", "title_attribute": None},
        )
    )
    assert patched["name"] == "Subscription" and patched["title_attribute"] is None
    assert patched["attributes"] == created["attributes"]
    assert ok(admin.get(f"/custom_object_types/{identifier}"))["name"] == "Subscription"
    ok(admin.delete(f"/custom_object_types/{identifier}"), 204)
    assert admin.get(f"/custom_object_types/{identifier}").status_code == 404


def test_type_definitions_are_checked(admin: httpx.Client) -> None:
    identifier = new_type(admin)
    again = admin.post("/custom_object_types", json={"identifier": identifier, **ORDER})
    assert again.status_code == 409, again.text
    for body in (
        {"identifier": "1Order"},
        {"identifier": "Order x"},
        {"identifier": "Dup", "attributes": [{"name": "a", "type": "string"}] * 2},
        {"identifier": "NoTitle", "title_attribute": "missing"},
        {"identifier": "BadKind", "attributes": [{"name": "a", "type": "money"}]},
    ):
        response = admin.post("/custom_object_types", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_only_administrators_manage_types(admin: httpx.Client, agent: httpx.Client) -> None:
    identifier = new_type(admin)
    for response in (
        agent.get("/custom_object_types"),
        agent.get(f"/custom_object_types/{identifier}"),
        agent.post("/custom_object_types", json={"identifier": "Mine"}),
        agent.patch(f"/custom_object_types/{identifier}", json={"name": "X"}),
        agent.delete(f"/custom_object_types/{identifier}"),
    ):
        assert response.status_code == 403, response.text


def test_a_type_with_instances_is_not_deleted(admin: httpx.Client, agent: httpx.Client) -> None:
    identifier = new_type(admin)
    ok(agent.post(f"/custom_object_instances/{identifier}", json={"external_id": "1"}))
    assert admin.delete(f"/custom_object_types/{identifier}").status_code == 409
    ok(agent.delete(f"/custom_object_instances/{identifier}", params={"external_id": "1"}))
    ok(admin.delete(f"/custom_object_types/{identifier}"), 204)


# --- instances --------------------------------------------------------------------------------


def test_create_or_update_by_external_id_in_intercoms_shape(
    admin: httpx.Client, agent: httpx.Client
) -> None:
    identifier = new_type(admin)
    body = {
        "external_id": "123",
        "external_created_at": 1392036272,
        "external_updated_at": 1392036272,
        "custom_attributes": {
            "order_number": "ORDER-12345",
            "total": 99.99,
            "items": "3",
            "paid": True,
            "shipped_on": "2026-11-30",
            "paid_at": 1734537745,
        },
    }
    created = ok(agent.post(f"/custom_object_instances/{identifier}", json=body))
    assert set(created) == {
        "id", "type", "external_id", "external_created_at", "external_updated_at",
        "created_at", "updated_at", "custom_attributes",
    }  # fmt: skip
    assert created["id"].startswith("coi_") and created["type"] == identifier
    assert created["external_id"] == "123" and created["external_created_at"] == 1392036272
    assert isinstance(created["created_at"], int)
    assert created["custom_attributes"] == {
        "order_number": "ORDER-12345",
        "total": "99.99",
        "items": 3,
        "paid": True,
        "shipped_on": "2026-11-30",
        "paid_at": "2024-12-18T16:02:25.000Z",
    }
    updated = ok(
        agent.post(
            f"/custom_object_instances/{identifier}",
            json={
                "external_id": "123",
                "external_updated_at": 1392036999,
                "custom_attributes": {"total": "100.50", "paid": None},
            },
        )
    )
    assert updated["id"] == created["id"]
    assert updated["external_created_at"] == 1392036272  # absent: unchanged
    assert updated["external_updated_at"] == 1392036999
    assert updated["custom_attributes"]["total"] == "100.50"
    assert "paid" not in updated["custom_attributes"]  # null removes it
    assert updated["custom_attributes"]["order_number"] == "ORDER-12345"  # merged
    by_id = ok(agent.get(f"/custom_object_instances/{identifier}/{created['id']}"))
    assert by_id == updated
    assert ok(agent.get(f"/custom_object_instances/{identifier}/123")) == updated
    by_external = ok(
        agent.get(f"/custom_object_instances/{identifier}", params={"external_id": "123"})
    )
    assert by_external == updated


def test_values_that_do_not_fit_the_type_are_refused(
    admin: httpx.Client, agent: httpx.Client
) -> None:
    identifier = new_type(admin)
    url = f"/custom_object_instances/{identifier}"
    for attributes, field in (
        ({"unknown": "x"}, "custom_attributes.unknown"),
        ({"order_number": "A\x1b[2J"}, "custom_attributes.order_number"),
        ({"order_number": "x" * 10_001}, "custom_attributes.order_number"),
        ({"items": "three"}, "custom_attributes.items"),
        ({"items": 1.5}, "custom_attributes.items"),
        ({"total": "lots"}, "custom_attributes.total"),
        ({"paid": "maybe"}, "custom_attributes.paid"),
        ({"shipped_on": "30/11/2026"}, "custom_attributes.shipped_on"),
        ({"paid_at": "yesterday"}, "custom_attributes.paid_at"),
    ):
        response = agent.post(url, json={"external_id": "x", "custom_attributes": attributes})
        error = intercom_error(response, 422, "parameter_invalid")
        assert error["field"] == field, error
    missing = agent.post(url, json={"custom_attributes": {}})
    assert intercom_error(missing, 422, "parameter_not_found")["field"] == "external_id"
    not_json = agent.post(url, content=b"{", headers={"content-type": "application/json"})
    intercom_error(not_json, 400, "bad_request")
    assert agent.get(url, params={"external_id": "x"}).status_code == 404  # nothing was made


def test_intercoms_not_found_errors(admin: httpx.Client, agent: httpx.Client) -> None:
    error = intercom_error(
        agent.post("/custom_object_instances/Nope", json={"external_id": "1"}), 404, "not_found"
    )
    assert error["message"] == "Custom object type `Nope` not found"
    for response in (
        agent.get("/custom_object_instances/Nope", params={"external_id": "1"}),
        agent.get("/custom_object_instances/Nope"),
        agent.get("/custom_object_instances/Nope/coi_x"),
        agent.delete("/custom_object_instances/Nope/coi_x"),
        agent.delete("/custom_object_instances/Nope", params={"external_id": "1"}),
    ):
        assert intercom_error(response, 404, "not_found")["message"].startswith(
            "Custom object type"
        )
    identifier = new_type(admin)
    url = f"/custom_object_instances/{identifier}"
    for response in (
        agent.get(url, params={"external_id": "none"}),
        agent.get(f"{url}/coi_none"),
        agent.delete(f"{url}/coi_none"),
        agent.delete(url, params={"external_id": "none"}),
    ):
        error = intercom_error(response, 404, "not_found")
        assert error["message"] == "Custom object instance not found"


def test_every_call_needs_a_valid_token(server: LiveServer, admin: httpx.Client) -> None:
    identifier = new_type(admin)
    url = f"{server.base_url}/api/v1/custom_object_instances/{identifier}"
    for headers in ({}, {"Authorization": "Bearer fpt_nope"}):
        for response in (
            httpx.post(url, json={"external_id": "1"}, headers=headers),
            httpx.get(url, params={"external_id": "1"}, headers=headers),
            httpx.get(f"{url}/coi_x", headers=headers),
            httpx.delete(url, params={"external_id": "1"}, headers=headers),
            httpx.put(f"{url}/coi_x/contacts/usr_x", headers=headers),
        ):
            intercom_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer ")
        response = httpx.get(f"{server.base_url}/api/v1/custom_object_types", headers=headers)
        assert response.status_code == 401


def test_delete_by_id_and_by_external_id(admin: httpx.Client, agent: httpx.Client) -> None:
    identifier = new_type(admin)
    url = f"/custom_object_instances/{identifier}"
    first = ok(agent.post(url, json={"external_id": "a"}))
    ok(agent.post(url, json={"external_id": "b"}))
    assert ok(agent.delete(f"{url}/{first['id']}")) == {
        "object": identifier,
        "id": first["id"],
        "deleted": True,
    }
    # DELETE by id takes findesk's id only: an external id there is not found.
    intercom_error(agent.delete(f"{url}/b"), 404, "not_found")
    gone = ok(agent.delete(url, params={"external_id": "b"}))
    assert gone["deleted"] is True and gone["object"] == identifier
    intercom_error(agent.get(f"{url}/{first['id']}"), 404, "not_found")
    missing = agent.delete(url)
    intercom_error(missing, 422, "parameter_not_found")


# --- links and lists --------------------------------------------------------------------------


def test_links_to_end_users_and_conversations_filter_the_list(
    admin: httpx.Client, agent: httpx.Client, fin_side: World
) -> None:
    identifier = new_type(admin)
    url = f"/custom_object_instances/{identifier}"
    user = fin_side.user(name="Jane", email=f"jane-{uuid.uuid4().hex[:6]}@example.com")
    conversation = fin_side.open(user["id"])["conversation"]
    made = [
        ok(agent.post(url, json={"external_id": f"o{n}", "custom_attributes": {"items": n}}))
        for n in range(5)
    ]
    for instance in made[:3]:
        link = ok(agent.put(f"{url}/{instance['id']}/contacts/{user['id']}"))
        assert link["type"] == "contact" and link["linked"] is True
        assert link["instance"]["id"] == instance["id"]
    ok(agent.put(f"{url}/{made[0]['id']}/contacts/{user['id']}"))  # again: no change
    # By external id too, and a conversation by findesk's id.
    ok(agent.put(f"{url}/o3/conversations/{conversation['id']}"))
    ok(agent.put(f"{url}/{made[2]['id']}/conversations/{conversation['id']}"))

    everything = ok(agent.get(url))
    assert everything["type"] == "list" and everything["total_count"] == 5
    assert [i["external_id"] for i in everything["data"]] == ["o4", "o3", "o2", "o1", "o0"]
    assert everything["pages"] == {
        "type": "pages",
        "page": 1,
        "per_page": 50,
        "total_pages": 1,
        "next": None,
    }
    mine = ok(agent.get(url, params={"references_contact_id": user["id"]}))
    assert [i["external_id"] for i in mine["data"]] == ["o2", "o1", "o0"]
    in_conversation = ok(agent.get(url, params={"references_conversation_id": conversation["id"]}))
    assert [i["external_id"] for i in in_conversation["data"]] == ["o3", "o2"]
    both = ok(
        agent.get(
            url,
            params={
                "references_contact_id": user["id"],
                "references_conversation_id": conversation["id"],
            },
        )
    )
    assert [i["external_id"] for i in both["data"]] == ["o2"]
    nobody = ok(agent.get(url, params={"references_contact_id": "usr_nobody"}))
    assert nobody["total_count"] == 0 and nobody["data"] == []

    unlinked = ok(agent.delete(f"{url}/o0/contacts/{user['id']}"))
    assert unlinked["linked"] is False
    ok(agent.delete(f"{url}/o0/contacts/{user['id']}"))  # not linked: no change
    mine = ok(agent.get(url, params={"references_contact_id": user["id"]}))
    assert [i["external_id"] for i in mine["data"]] == ["o2", "o1"]
    ok(agent.delete(f"{url}/o3/conversations/{conversation['id']}"))
    in_conversation = ok(agent.get(url, params={"references_conversation_id": conversation["id"]}))
    assert [i["external_id"] for i in in_conversation["data"]] == ["o2"]
    # Deleting an instance removes its links.
    ok(agent.delete(url, params={"external_id": "o2"}))
    mine = ok(agent.get(url, params={"references_contact_id": user["id"]}))
    assert [i["external_id"] for i in mine["data"]] == ["o1"]


def test_links_to_what_does_not_exist_are_not_found(
    admin: httpx.Client, agent: httpx.Client
) -> None:
    identifier = new_type(admin)
    url = f"/custom_object_instances/{identifier}"
    instance = ok(agent.post(url, json={"external_id": "z"}))
    error = intercom_error(agent.put(f"{url}/z/contacts/usr_nobody"), 404, "not_found")
    assert error["message"] == "Contact not found"
    error = intercom_error(agent.put(f"{url}/z/conversations/conv_none"), 404, "not_found")
    assert error["message"] == "Conversation not found"
    error = intercom_error(agent.put(f"{url}/nope/contacts/usr_x"), 404, "not_found")
    assert error["message"] == "Custom object instance not found"
    assert instance["id"]


def test_pages_of_at_most_150(admin: httpx.Client, agent: httpx.Client) -> None:
    identifier = new_type(admin)
    url = f"/custom_object_instances/{identifier}"
    for n in range(7):
        ok(agent.post(url, json={"external_id": f"p{n}"}))
    first = ok(agent.get(url, params={"per_page": 3}))
    assert first["total_count"] == 7 and first["pages"]["total_pages"] == 3
    assert first["pages"]["next"].endswith("page=2") and "per_page=3" in first["pages"]["next"]
    third = ok(agent.get(url, params={"per_page": 3, "page": 3}))
    assert [i["external_id"] for i in third["data"]] == ["p0"] and third["pages"]["next"] is None
    beyond = ok(agent.get(url, params={"per_page": 3, "page": 9}))
    assert beyond["data"] == [] and beyond["total_count"] == 7
    assert ok(agent.get(url, params={"per_page": 150}))["pages"]["per_page"] == 150
    for params in ({"per_page": 151}, {"per_page": 0}, {"page": 0}, {"page": "x"}):
        error = intercom_error(agent.get(url, params=params), 422, "parameter_invalid")
        assert error["field"] in ("per_page", "page")


def test_concurrent_creates_of_one_external_id_make_one_instance(
    server: LiveServer, admin: httpx.Client, fin_side: World
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    identifier = new_type(admin)
    url = f"{server.base_url}/api/v1/custom_object_instances/{identifier}"
    headers = dict(admin.headers)

    def create(n: int) -> httpx.Response:
        body = {"external_id": "same", "custom_attributes": {"items": n}}
        return httpx.post(url, json=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(create, range(8)))
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert ok(admin.get(f"/custom_object_instances/{identifier}"))["total_count"] == 1
    user_id = fin_side.user(email=f"race-{uuid.uuid4().hex[:6]}@example.com")["id"]

    def link(_: int) -> httpx.Response:
        return httpx.put(f"{url}/same/contacts/{user_id}", headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        linked = list(pool.map(link, range(8)))
    assert [a.status_code for a in linked] == [200] * 8, [a.text for a in linked]
    mine = ok(
        admin.get(
            f"/custom_object_instances/{identifier}", params={"references_contact_id": user_id}
        )
    )
    assert mine["total_count"] == 1
