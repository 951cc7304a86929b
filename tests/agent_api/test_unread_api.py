"""The agent API's unread flag, on SQLite and on PostgreSQL: each queue item says whether the
conversation has news for the agent asking, and reading the conversation
(``GET /conversations/{id}``) clears it for that agent alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.fin import World
from support.server import LiveServer

from findesk.fin_api.client import FinApiClient


@pytest.fixture(scope="module")
def fin_side(fin: httpx.Client, server: LiveServer) -> World:
    return World(FinApiClient(fin, "rest"), server.fin_agent_id)


@pytest.fixture(scope="module")
def second_agent(server: LiveServer) -> Iterator[httpx.Client]:
    with server.agent_http(f"bea-{uuid.uuid4().hex[:6]}@example.com", "Bea Second") as client:
        yield client


def unread(client: httpx.Client, user_id: str) -> dict[str, bool]:
    response = client.get("/conversations", params={"user_id": user_id, "limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return {item["id"]: item["unread"] for item in items}


def test_list_items_say_unread_until_the_agent_reads_the_conversation(
    fin_side: World, agent_client: httpx.Client, second_agent: httpx.Client
) -> None:
    user = fin_side.user()
    conversation, _ = fin_side.conversation(user)
    cid = conversation["id"]
    fin_side.hand_over(cid)
    assert unread(agent_client, user["id"]) == {cid: True}

    read = agent_client.get(f"/conversations/{cid}")
    assert read.status_code == 200, read.text
    assert unread(agent_client, user["id"]) == {cid: False}
    assert unread(second_agent, user["id"]) == {cid: True}

    # Their own reply is no news to them; it is to the other agent, until they read it.
    sent = agent_client.post(f"/conversations/{cid}/messages", json={"body": "<p>On it</p>"})
    assert sent.status_code == 201, sent.text
    assert unread(agent_client, user["id"]) == {cid: False}
    assert second_agent.get(f"/conversations/{cid}").status_code == 200
    assert unread(second_agent, user["id"]) == {cid: False}

    # The end user answers: unread again for both.
    fin_side.user_says(cid, user["id"], "<p>Thanks!</p>")
    assert unread(agent_client, user["id"]) == {cid: True}
    assert unread(second_agent, user["id"]) == {cid: True}
    # Paging through messages (the messages endpoint) does not read the conversation.
    assert agent_client.get(f"/conversations/{cid}/messages").status_code == 200
    assert unread(agent_client, user["id"]) == {cid: True}
    # A page of the newest message only reads it up to that one: all of it.
    assert agent_client.get(f"/conversations/{cid}", params={"limit": 1}).status_code == 200
    assert unread(agent_client, user["id"]) == {cid: False}


def test_unread_is_in_the_published_schema(agent_client: httpx.Client) -> None:
    base = str(agent_client.base_url).removesuffix("/api/v1").removesuffix("/api/v1/")
    schema = httpx.get(f"{base}/openapi.json").json()
    item = schema["components"]["schemas"]["ConversationListItem"]
    assert "unread" in item["required"] and item["properties"]["unread"]["type"] == "boolean"
    page = schema["components"]["schemas"]["ConversationPage"]
    assert page["properties"]["items"]["items"]["$ref"].endswith("/ConversationListItem")
