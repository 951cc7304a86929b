"""The Data Connectors API emulator (spec 9), over HTTP as a client of Intercom's API would call
it, and ``execute`` calling a real endpoint on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from content_api_server import TOKEN, ServedApp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from test_content_api import assert_error

from findesk.emulator.content_api import create_content_api
from findesk.emulator.data_connectors_api import connectors_store_of, execute, redact_url
from findesk.emulator.data_connectors_store import DataConnectorStore

PREVIEW = {"Intercom-Version": "Preview"}


@pytest.fixture
def dc(tmp_path: Path) -> Iterator[ServedApp]:
    served = ServedApp(create_content_api(f"sqlite:///{tmp_path / 'dc.db'}", [TOKEN], 100_000, 10))
    yield served
    served.stop()


@pytest.fixture
def api(dc: ServedApp) -> Iterator[httpx.Client]:
    with dc.client(**PREVIEW) as client:
        yield client


def store(dc: ServedApp) -> DataConnectorStore:
    return connectors_store_of(dc.app)


def connector_body(name: str = "Order status", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Looks up an order",
        "http_method": "get",
        "url": "https://shop.example.com/orders/{{order_id}}",
        "direct_fin_usage": True,
        "audiences": ["users", "leads"],
        "headers": [{"name": "Authorization", "value": "Bearer s3cret-token-value"}],
        "data_inputs": [
            {"name": "order_id", "type": "string", "description": "The order", "required": True}
        ],
        "mock_response": {"status": "shipped", "items": [{"sku": "A1", "qty": 2}], "paid": True},
        **fields,
    }


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/data_connectors", json=connector_body(**fields))
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- connectors -------------------------------------------------------------------------------


def test_create_answers_a_draft_detail_with_redacted_headers_and_response_fields(
    api: httpx.Client,
) -> None:
    created = create(api)
    assert created["type"] == "data_connector" and isinstance(created["id"], str)
    assert created["state"] == "draft"
    assert created["name"] == "Order status" and created["http_method"] == "get"
    assert created["audiences"] == ["users", "leads"] and created["direct_fin_usage"] is True
    assert created["headers"] == [{"name": "Authorization", "value": "****"}]
    assert "s3cret" not in api.get(f"/data_connectors/{created['id']}").text
    assert created["data_inputs"] == [
        {
            "name": "order_id",
            "type": "string",
            "description": "The order",
            "required": True,
            "default_value": None,
        }
    ]
    assert created["response_fields"] == [
        {"path": "status", "type": "string", "example_value": "shipped", "redacted": False},
        {"path": "items[].sku", "type": "string", "example_value": "A1", "redacted": False},
        {"path": "items[].qty", "type": "integer", "example_value": "2", "redacted": False},
        {"path": "paid", "type": "boolean", "example_value": "true", "redacted": False},
    ]
    assert created["configuration_response_type"] == "mock_response_type"
    assert created["customer_authentication"] is False
    assert created["bypass_authentication"] is False
    assert created["created_at"].endswith("Z") and created["updated_at"].endswith("Z")
    assert created["execution_results_url"].endswith(
        f"/data_connectors/{created['id']}/execution_results"
    )
    for key in ("execution_type", "data_transformation_type", "object_mappings", "token_ids"):
        assert key in created

    minimal = api.post("/data_connectors", json={"name": "Bare", "state": "live"})
    assert minimal.status_code == 201
    assert minimal.json()["state"] == "draft" and minimal.json()["direct_fin_usage"] is False


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"description": "no name"}, "name", "Name can't be blank"),
        ({"name": "  "}, "name", "Name can't be blank"),
        (
            {"name": "x", "audiences": ["admins"]},
            "audiences",
            "Invalid audiences. Must be a subset of: leads, users, visitors",
        ),
        ({"name": "x", "http_method": "fetch"}, "http_method", "Http Method isn't an option"),
        ({"name": "x", "url": "not a url"}, "url", None),
        ({"name": "x", "headers": [{"name": "A"}]}, "headers", None),
        ({"name": "x", "data_inputs": [{"name": "a", "type": "string"}]}, "data_inputs", None),
        (
            {"name": "x", "data_inputs": [{"name": "a", "type": "date", "description": "d"}]},
            "data_inputs",
            None,
        ),
        ({"name": "x", "direct_fin_usage": "yes"}, "direct_fin_usage", None),
        ({"name": "x", "mock_response": [1]}, "mock_response", None),
    ],
)
def test_create_refuses_invalid_fields_with_422(
    api: httpx.Client, body: dict[str, Any], field: str, message: str | None
) -> None:
    response = api.post("/data_connectors", json=body)
    assert_error(response, 422, "parameter_invalid", field)
    if message is not None:
        assert response.json()["errors"][0]["message"] == message


def test_bodies_auth_version_and_unknown_ids(dc: ServedApp, api: httpx.Client) -> None:
    assert_error(api.post("/data_connectors", content=b"[1]"), 400, "bad_request")
    with dc.client(token="wrong", **PREVIEW) as stranger:
        assert_error(stranger.get("/data_connectors"), 401, "unauthorized")
    with dc.client() as old:  # Intercom-Version 2.14: no data connectors there
        assert_error(old.get("/data_connectors"), 404, "not_found")
    with dc.client(**{"Intercom-Version": "2.16"}) as current:
        assert current.get("/data_connectors").status_code == 200
    for path in ("/data_connectors/999", "/data_connectors/abc"):
        assert_error(api.get(path), 404, "data_connector_not_found")
        assert_error(api.patch(path, json={"name": "x"}), 404, "data_connector_not_found")
        assert_error(api.delete(path), 404, "data_connector_not_found")
        assert_error(api.get(f"{path}/execution_results"), 404, "data_connector_not_found")


def test_patch_edits_the_draft_and_state_live_publishes_it(api: httpx.Client) -> None:
    created = create(api)
    path = f"/data_connectors/{created['id']}"
    assert_error(
        api.get(path, params={"state_version": "old"}), 400, "parameter_invalid", "state_version"
    )
    assert_error(api.patch(path, json={"state": "gone"}), 422, "parameter_invalid", "state")
    assert api.patch(path, json={"state": "gone"}).json()["errors"][0]["message"] == (
        "Invalid state"
    )

    live = api.patch(path, json={"state": "live"})
    assert live.status_code == 200 and live.json()["state"] == "live"
    assert api.get(path).json()["name"] == "Order status"

    # Only the fields sent change; the live version stays as published until published again.
    edited = api.patch(path, json={"name": "Order lookup"}).json()
    assert edited["name"] == "Order lookup" and edited["description"] == "Looks up an order"
    assert edited["audiences"] == ["users", "leads"] and edited["state"] == "live"
    assert api.get(path).json()["name"] == "Order status"
    assert api.get(path, params={"state_version": "live"}).json()["name"] == "Order status"
    assert api.get(path, params={"state_version": "draft"}).json()["name"] == "Order lookup"

    # data_inputs replaces every input; mock_response regenerates response_fields.
    replaced = api.patch(
        path,
        json={
            "data_inputs": [{"name": "email", "type": "string", "description": "Who"}],
            "mock_response": {"total": 12.5},
            "state": "live",
        },
    ).json()
    assert [i["name"] for i in replaced["data_inputs"]] == ["email"]
    assert replaced["response_fields"] == [
        {"path": "total", "type": "decimal", "example_value": "12.5", "redacted": False}
    ]
    published = api.get(path).json()
    assert published["name"] == "Order lookup" and published["data_inputs"][0]["name"] == "email"
    assert published["headers"] == [{"name": "Authorization", "value": "****"}]


def test_list_pages_with_a_cursor_most_recently_updated_first(api: httpx.Client) -> None:
    ids = [create(api, name=f"Connector {n}")["id"] for n in range(5)]
    api.patch(f"/data_connectors/{ids[1]}", json={"description": "touched"})
    expected = [ids[1], ids[4], ids[3], ids[2], ids[0]]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"per_page": 2}
        if cursor:
            params["starting_after"] = cursor
        body = api.get("/data_connectors", params=params).json()
        pages += 1
        assert body["type"] == "list" and body["pages"]["per_page"] == 2
        for item in body["data"]:
            assert item["type"] == "data_connector"
            assert "headers" not in item and "data_inputs" not in item
        seen += [item["id"] for item in body["data"]]
        if body["pages"]["next"] is None:
            break
        cursor = body["pages"]["next"]["starting_after"]
    assert seen == expected and pages == 3
    assert len(api.get("/data_connectors").json()["data"]) == 5  # default 20
    for bad in ({"per_page": 0}, {"per_page": 51}, {"per_page": "x"}, {"starting_after": "@@"}):
        [field] = bad
        assert_error(api.get("/data_connectors", params=bad), 400, "parameter_invalid", field)


def test_delete_needs_a_draft_that_is_not_in_use(dc: ServedApp, api: httpx.Client) -> None:
    target = Target()
    try:
        created = create(api, url=f"{target.base_url}/orders/{{{{order_id}}}}")
        path = f"/data_connectors/{created['id']}"
        api.patch(path, json={"state": "live"})
        assert_error(api.delete(path), 409, "conflict")

        execute(store(dc), created["id"], {"order_id": "1"}, conversation_id="conv_1")
        assert_error(api.patch(path, json={"state": "draft"}), 409, "data_connector_in_use")
        assert_error(api.delete(path), 409, "data_connector_in_use")
        assert api.get(path).json()["state"] == "live"

        store(dc).in_use_seconds = 0  # the conversation is over
        assert api.patch(path, json={"state": "draft"}).json()["state"] == "draft"
        gone = api.delete(path)
        assert gone.status_code == 200
        assert gone.json() == {"id": created["id"], "object": "data_connector", "deleted": True}
        assert_error(api.get(path), 404, "data_connector_not_found")
    finally:
        target.stop()


def test_the_shared_rate_limit_applies(tmp_path: Path) -> None:
    served = ServedApp(create_content_api(f"sqlite:///{tmp_path / 'l.db'}", [TOKEN], 3, 3600))
    try:
        with served.client(**PREVIEW) as client:
            statuses = [client.get("/data_connectors").status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            limited = client.get("/data_connectors")
            assert_error(limited, 429, "rate_limit_exceeded")
            assert limited.headers["X-RateLimit-Limit"] == "3"
            assert limited.headers["X-RateLimit-Remaining"] == "0"
            assert int(limited.headers["X-RateLimit-Reset"]) > time.time()
    finally:
        served.stop()


# --- executing and execution results ----------------------------------------------------------


class Target:
    """A third-party API on loopback that records what it is sent."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        app = FastAPI()

        @app.get("/orders/{order_id:path}")
        def order(order_id: str, request: Request) -> Any:
            self.seen.append(
                {"path": request.url.path, "query": str(request.url.query), **request.headers}
            )
            if order_id == "missing":
                return JSONResponse({"error": "no such order"}, status_code=404)
            if order_id == "text":
                return PlainTextResponse("not json")
            return {"id": order_id, "status": "shipped"}

        self.served = ServedApp(app)
        self.base_url = self.served.base_url

    def stop(self) -> None:
        self.served.stop()


def test_execute_fills_templates_calls_the_endpoint_and_records_results(
    dc: ServedApp, api: httpx.Client
) -> None:
    target = Target()
    try:
        created = create(
            api,
            url=f"{target.base_url}/orders/{{{{order_id}}}}?api_key=k3y-{{{{order_id}}}}&lang=en",
            headers=[
                {"name": "Authorization", "value": "Bearer s3cret-token-value"},
                {"name": "X-Order", "value": "order {{order_id}}"},
            ],
        )
        cid = created["id"]
        never_live = execute(store(dc), cid, {"order_id": "1"}, conversation_id="c0")
        assert not never_live.success and never_live.error_type == "request_configuration_error"
        assert target.seen == []
        api.patch(f"/data_connectors/{cid}", json={"state": "live"})

        ok = execute(store(dc), cid, {"order_id": "a b/1"}, conversation_id="conv_1")
        assert (
            ok.success
            and ok.http_status == 200
            and ok.data
            == {
                "id": "a b/1",
                "status": "shipped",
            }
        )
        [call] = target.seen
        assert call["path"] == "/orders/a b/1"  # sent URL-encoded, as one path segment
        assert "/orders/a%20b%2F1?" in ok.request_url
        assert call["authorization"] == "Bearer s3cret-token-value"
        assert call["x-order"] == "order a b/1"
        assert "s3cret" not in ok.request_url and "k3y" not in ok.request_url
        assert "api_key=****" in ok.request_url and "lang=en" in ok.request_url
        assert ok.source_type == "fin" and ok.conversation_id == "conv_1"

        missing_input = execute(store(dc), cid, {}, conversation_id="conv_2")
        assert missing_input.error_type == "request_configuration_error"
        assert "order_id" in (missing_input.error_message or "")
        third_party = execute(store(dc), cid, {"order_id": "missing"}, conversation_id="conv_3")
        assert (third_party.success, third_party.http_status) == (False, 404)
        assert third_party.error_type == "3rd_party_error"
        mapping = execute(store(dc), cid, {"order_id": "text"}, conversation_id="conv_4")
        assert mapping.error_type == "response_mapping_error"
        assert len(target.seen) == 3

        results = f"/data_connectors/{cid}/execution_results"
        listed = api.get(results).json()
        assert [r["conversation_id"] for r in listed["data"]] == [
            "conv_4",
            "conv_3",
            "conv_2",
            "conv_1",
            "c0",
        ]
        first = listed["data"][-2]
        assert first["type"] == "data_connector_execution_result"
        assert first["success"] is True and first["http_status"] == 200
        assert first["source_type"] == "fin" and first["data_connector_id"] == cid
        assert isinstance(first["execution_time_ms"], int) and "response_body" not in first
        assert "s3cret" not in api.get(results).text

        failures = api.get(results, params={"success": "false"}).json()["data"]
        assert len(failures) == 4 and not any(r["success"] for r in failures)
        typed = api.get(results, params={"error_type": "3rd_party_error"}).json()["data"]
        assert [r["conversation_id"] for r in typed] == ["conv_3"]
        with_bodies = api.get(results, params={"include_bodies": "true", "per_page": 2}).json()
        assert with_bodies["data"][0]["response_body"] == "not json"
        assert with_bodies["pages"]["next"] is not None
        rest = api.get(
            results,
            params={
                "per_page": 2,
                "starting_after": with_bodies["pages"]["next"]["starting_after"],
            },
        ).json()
        assert [r["conversation_id"] for r in rest["data"]] == ["conv_2", "conv_1"]
        past = int(time.time()) - 7200
        assert api.get(results, params={"end_ts": past}).json()["data"] == []
        window = {"start_ts": past, "end_ts": int(time.time()) + 1}
        assert len(api.get(results, params=window).json()["data"]) == 5

        one = api.get(f"{results}/{first['id']}").json()
        assert one["id"] == first["id"] and '"shipped"' in one["response_body"]
        assert "request_body" in one
        assert_error(api.get(f"{results}/999999"), 404, "not_found")
        for bad in ({"per_page": 31}, {"success": "maybe"}, {"start_ts": "soon"}):
            [field] = bad
            assert_error(api.get(results, params=bad), 400, "parameter_invalid", field)
    finally:
        target.stop()


def test_execute_records_a_network_failure_as_faraday_error(
    dc: ServedApp, api: httpx.Client
) -> None:
    created = create(api, url="http://127.0.0.1:9/orders/{{order_id}}")
    api.patch(f"/data_connectors/{created['id']}", json={"state": "live"})
    failed = execute(store(dc), created["id"], {"order_id": "1"}, conversation_id="c", timeout=2)
    assert not failed.success and failed.error_type == "faraday_error"
    assert failed.http_status is None


def test_request_urls_are_redacted() -> None:
    assert redact_url("https://u:pw@x.example.com/a?token=abc&q=1", []) == (
        "https://****@x.example.com/a?token=****&q=1"
    )
    assert redact_url("https://x.example.com/k/abcdef123", ["abcdef123"]) == (
        "https://x.example.com/k/****"
    )
