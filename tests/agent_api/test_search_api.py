"""GET /api/v1/search on SQLite and PostgreSQL: full-text search as the inbox's, with snippets,
queue filters, cursor pages, refusals of bad input, and its place in the OpenAPI document."""

from __future__ import annotations

import uuid

import httpx
import pytest
from support.fin import World
from support.server import LiveServer

from findesk.fin_api.client import FinApiClient


@pytest.fixture(scope="module")
def fin_side(fin: httpx.Client, server: LiveServer) -> World:
    return World(FinApiClient(fin), server.fin_agent_id)


def test_search_finds_with_highlighted_escaped_snippets(
    agent_client: httpx.Client, fin_side: World
) -> None:
    word = f"okapi{uuid.uuid4().hex[:8]}"
    user = fin_side.user(name=f"Ola {word}", email=f"{word}@zoo.example")
    by_user, _ = fin_side.conversation(user)
    by_text, first = fin_side.conversation(body=f"<p>&lt;script&gt; {word} <i>x</i></p>")
    reply = agent_client.get("/search", params={"q": word})
    assert reply.status_code == 200, reply.text
    items = reply.json()["items"]
    assert [i["conversation"]["id"] for i in items] == [by_text["id"], by_user["id"]]
    assert items[0]["message_id"] == first["id"]
    assert items[0]["snippet"] == f"&lt;script&gt; <mark>{word}</mark> x"
    assert items[1]["message_id"] is None
    assert f"<mark>{word}</mark>@zoo" in items[1]["snippet"]
    # Only in the waiting queue: neither has been handed over.
    assert agent_client.get("/search", params={"q": word, "queue": "waiting"}).json() == {
        "items": [],
        "next_cursor": None,
    }
    fin_side.hand_over(by_user["id"])
    waiting = agent_client.get("/search", params={"q": word, "queue": "waiting"}).json()
    assert [i["conversation"]["id"] for i in waiting["items"]] == [by_user["id"]]


def test_search_pages_with_a_cursor(agent_client: httpx.Client, fin_side: World) -> None:
    word = f"tapir{uuid.uuid4().hex[:8]}"
    made = [fin_side.conversation(body=f"<p>{word}</p>")[0]["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": word, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = agent_client.get("/search", params=params).json()
        seen += [i["conversation"]["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


@pytest.mark.parametrize("q", ['"', "(a OR", "* - AND", "-", "日本", "'; DROP TABLE x; --"])
def test_hostile_queries_answer_200(agent_client: httpx.Client, q: str) -> None:
    assert agent_client.get("/search", params={"q": q}).status_code == 200


def test_bad_input_is_refused(agent_client: httpx.Client, server: LiveServer) -> None:
    assert agent_client.get("/search").status_code == 422
    assert agent_client.get("/search", params={"q": ""}).status_code == 422
    assert agent_client.get("/search", params={"q": "x" * 201}).status_code == 422
    assert agent_client.get("/search", params={"q": "a", "cursor": "nope"}).status_code == 422
    with httpx.Client(base_url=f"{server.base_url}/api/v1") as anonymous:
        assert anonymous.get("/search", params={"q": "a"}).status_code == 401


def test_search_is_in_the_openapi_document(agent_client: httpx.Client, server: LiveServer) -> None:
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    operation = document["paths"]["/api/v1/search"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"q", "queue", "cursor", "limit"}
