"""What schemathesis found in the agent API (tests/agent_api/test_agent_api_schemathesis.py), one
focused test each, against a live server on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from support.server import LiveServer

from findesk.agent_api.idempotency import KEY_PATTERN
from findesk.idempotency.service import InvalidKey, checked_key

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    return dict(httpx.get(f"{server.base_url}/openapi.json").raise_for_status().json())


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    return dict(response.json())


def an_article(client: httpx.Client) -> str:
    created = client.post("/articles", json={"title": f"Article {uuid.uuid4().hex[:8]}"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_a_history_cursor_past_64_bits_is_a_422_not_a_500(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    conversation, _ = server.fin_world().conversation()
    history = f"/conversations/{conversation['id']}/history"
    problem(agent_client.get(history, params={"after_id": 2**63}), 422)
    problem(agent_client.get(history, params={"after_id": 141806894338363141128192}), 422)
    last = agent_client.get(history, params={"after_id": 2**63 - 1})
    assert last.status_code == 200, last.text
    assert last.json() == {"items": [], "next_after_id": None}


def test_history_after_id_is_bounded_in_the_schema(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/v1/conversations/{conversation_id}/history"]["get"]
    [after_id] = [p for p in operation["parameters"] if p["name"] == "after_id"]
    assert after_id["schema"]["maximum"] == 2**63 - 1


def test_a_body_that_is_not_json_is_a_documented_400_on_patch_too(
    agent_client: httpx.Client, document: dict[str, Any]
) -> None:
    article_id = an_article(agent_client)
    for path, template in (
        (f"/articles/{article_id}", "/api/v1/articles/{article_id}"),
        ("/conversations/conv_nonexistent", "/api/v1/conversations/{conversation_id}"),
    ):
        refused = agent_client.patch(
            path, content=b"\x0f!{", headers={"content-type": "application/json"}
        )
        assert problem(refused, 400)["code"] == "invalid_json"
        assert "400" in document["paths"][template]["patch"]["responses"]


def test_every_operation_documents_the_413_it_may_answer(
    agent_client: httpx.Client, document: dict[str, Any]
) -> None:
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
    ]
    assert operations
    assert [f"{m} {p}" for p, m, op in operations if "413" not in op["responses"]] == []
    # 512 Ki characters are within the schema's limit, but 1.5 MiB of UTF-8 are over the
    # size limit for a request body (1 MiB by default).
    too_large = agent_client.post(
        "/conversations/conv_nonexistent/messages", json={"body": "€" * (512 * 1024)}
    )
    assert problem(too_large, 413)["code"] == "payload_too_large"


def test_the_literal_preview_path_is_not_taken_for_an_article_id(
    agent_client: httpx.Client,
) -> None:
    """OpenAPI matches ``/articles/preview`` before ``/articles/{article_id}``: only POST is
    served there; any other method is a 405 that says so (it was a lookup of article
    "preview", and OPTIONS listed the article's methods)."""
    for method in ("GET", "PATCH", "DELETE", "OPTIONS", "PUT"):
        refused = agent_client.request(method, "/articles/preview")
        problem(refused, 405)
        assert refused.headers["allow"] == "POST", method
    previewed = agent_client.post("/articles/preview", json={"body": "**bold**"})
    assert previewed.status_code == 200, previewed.text
    article_id = an_article(agent_client)
    assert agent_client.get(f"/articles/{article_id}").status_code == 200
    allowed = agent_client.options(f"/articles/{article_id}")
    assert allowed.headers["allow"] == "DELETE, GET, PATCH"


def test_an_article_patch_offers_null_only_for_url(
    agent_client: httpx.Client, document: dict[str, Any]
) -> None:
    schema = document["components"]["schemas"]["ArticlePatch"]
    nullable = {
        name
        for name, field in schema["properties"].items()
        if any(branch.get("type") == "null" for branch in field.get("anyOf", []))
    }
    assert nullable == {"url"}
    assert schema["properties"]["locale"]["maxLength"] == 35  # the constraints stay
    assert schema["properties"]["body_format"]["enum"] == ["markdown", "html"]
    # As documented: null is refused for the others, accepted for url.
    article_id = an_article(agent_client)
    refused = agent_client.patch(f"/articles/{article_id}", json={"body_format": None})
    [error] = problem(refused, 422)["errors"]
    assert "body_format cannot be null" in error["msg"]
    cleared = agent_client.patch(f"/articles/{article_id}", json={"url": None})
    assert cleared.status_code == 200, cleared.text


@pytest.mark.parametrize(
    "key",
    ["a", " a ", "~", "ab cd", "0" * 255, "", " ", "   ", "é", "a\x7f", "\t", "a\tb", "\x00"],
)
def test_the_documented_idempotency_key_is_the_accepted_one(key: str) -> None:
    try:
        checked_key(key)
        accepted = True
    except InvalidKey:
        accepted = False
    assert bool(re.fullmatch(KEY_PATTERN, key)) == accepted


def test_the_idempotency_key_rule_is_in_the_schema(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/v1/articles"]["post"]
    [key] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    [string] = [branch for branch in key["schema"]["anyOf"] if branch["type"] == "string"]
    assert string == {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN}
