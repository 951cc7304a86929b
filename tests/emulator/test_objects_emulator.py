"""The Custom Object Instances API emulator (spec 4, 2.14 paths), over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from content_api_server import TOKEN, ServedApp
from test_content_api import assert_error

from findesk.emulator.content_api import create_content_api
from findesk.emulator.objects_api import objects_store_of

ORDERS = "/custom_object_instances/Order"


@pytest.fixture
def objects(tmp_path: Path) -> Iterator[ServedApp]:
    app = create_content_api(
        f"sqlite:///{tmp_path / 'o.db'}", [TOKEN], 100_000, 10, object_types=["Order"]
    )
    served = ServedApp(app)
    yield served
    served.stop()


@pytest.fixture
def api(objects: ServedApp) -> Iterator[httpx.Client]:
    with objects.client() as client:
        yield client


def upsert(api: httpx.Client, external_id: str, **fields: Any) -> dict[str, Any]:
    body = {"external_id": external_id, "custom_attributes": {"total": 10}, **fields}
    response = api.post(ORDERS, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_upsert_by_external_id_creates_then_updates_the_same_instance(
    objects: ServedApp, api: httpx.Client
) -> None:
    created = upsert(api, "ord_1", external_created_at=1_700_000_000)
    assert created["type"] == "Order" and isinstance(created["id"], str)
    assert created["external_id"] == "ord_1" and created["custom_attributes"] == {"total": 10}
    assert created["external_created_at"] == 1_700_000_000
    assert created["external_updated_at"] is None
    assert isinstance(created["created_at"], int) and isinstance(created["updated_at"], int)

    updated = upsert(
        api, "ord_1", custom_attributes={"status": "paid"}, external_updated_at=1_700_000_100
    )
    assert updated["id"] == created["id"]
    assert updated["custom_attributes"] == {"status": "paid"}  # replaced, not merged
    assert updated["external_created_at"] == 1_700_000_000  # not sent: unchanged
    assert updated["external_updated_at"] == 1_700_000_100
    kept = api.post(ORDERS, json={"external_id": "ord_1"}).json()
    assert kept["custom_attributes"] == {"status": "paid"}
    assert len(objects_store_of(objects.app).instances("Order")) == 1


def test_get_and_delete_by_external_id_and_by_id(api: httpx.Client) -> None:
    first = upsert(api, "ord_a")
    second = upsert(api, "ord_b")
    assert api.get(ORDERS, params={"external_id": "ord_a"}).json()["id"] == first["id"]
    assert api.get(f"{ORDERS}/{first['id']}").json()["external_id"] == "ord_a"
    # The id parameter of GET accepts the external id too.
    assert api.get(f"{ORDERS}/ord_b").json()["id"] == second["id"]

    gone = api.delete(ORDERS, params={"external_id": "ord_a"})
    assert gone.status_code == 200
    assert gone.json() == {"object": "custom_object_instance", "id": first["id"], "deleted": True}
    assert_error(api.get(ORDERS, params={"external_id": "ord_a"}), 404, "ObjectNotFound")
    assert_error(api.delete(ORDERS, params={"external_id": "ord_a"}), 404, "ObjectNotFound")

    # DELETE with a path id: the Intercom id only.
    assert_error(api.delete(f"{ORDERS}/ord_b"), 404, "ObjectNotFound")
    assert api.delete(f"{ORDERS}/{second['id']}").json()["deleted"] is True
    assert_error(api.get(f"{ORDERS}/{second['id']}"), 404, "ObjectNotFound")


def test_unknown_types_and_invalid_requests(objects: ServedApp, api: httpx.Client) -> None:
    for response in (
        api.post("/custom_object_instances/Subscription", json={"external_id": "s"}),
        api.get("/custom_object_instances/Subscription", params={"external_id": "s"}),
        api.delete("/custom_object_instances/Subscription", params={"external_id": "s"}),
        api.get("/custom_object_instances/Subscription/1"),
        api.delete("/custom_object_instances/Subscription/1"),
        api.get("/custom_object_instances/order/1"),  # identifiers are case-sensitive
    ):
        assert_error(response, 404, "TypeNotFound")
    message = api.get("/custom_object_instances/Subscription/1").json()["errors"][0]["message"]
    assert message == "Custom object type `Subscription` not found"

    assert_error(
        api.post(ORDERS, json={"custom_attributes": {}}), 400, "parameter_not_found", "external_id"
    )
    assert_error(api.post(ORDERS, json={"external_id": 5}), 400, "parameter_invalid", "external_id")
    assert_error(
        api.post(ORDERS, json={"external_id": "x", "external_created_at": "soon"}),
        400,
        "parameter_invalid",
        "external_created_at",
    )
    assert_error(
        api.post(ORDERS, json={"external_id": "x", "custom_attributes": {"a": {"b": 1}}}),
        400,
        "parameter_invalid",
        "custom_attributes",
    )
    assert_error(api.post(ORDERS, content=b"[]"), 400, "bad_request")
    assert_error(api.get(ORDERS), 400, "parameter_not_found", "external_id")
    assert_error(api.get(f"{ORDERS}/404404"), 404, "ObjectNotFound")
    with objects.client(token="nope") as stranger:
        assert_error(stranger.get(f"{ORDERS}/1"), 401, "unauthorized")

    # A type defined later (in Intercom's UI) is served from then on.
    objects_store_of(objects.app).define_type("Subscription")
    assert (
        api.post("/custom_object_instances/Subscription", json={"external_id": "s"}).status_code
        == 200
    )
