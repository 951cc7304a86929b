"""Paging a long conversation's messages in the agent API, on SQLite and on PostgreSQL: the
newest page first, older pages with ``before``, newer ones with ``after_id``, each page in
creation order; walking either way gives every message once, with no gap."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.fin import World
from support.long_conversation import Long, open_long
from support.server import LiveServer

from findesk.fin_api.client import FinApiClient

PROBLEM_JSON = "application/problem+json"
MESSAGES = 130  # the first message and 129 more


@pytest.fixture(scope="module")
def long(fin: httpx.Client, server: LiveServer, agent_client: httpx.Client) -> Long:
    world = World(FinApiClient(fin, "rest"), server.fin_agent_id)
    agent_id = agent_client.agent_id  # type: ignore[attr-defined]
    return open_long(world, server.db, MESSAGES, human_agent_id=agent_id)


def page(client: httpx.Client, cid: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/conversations/{cid}/messages", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids_of(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def test_a_conversation_comes_with_its_newest_50_messages_and_a_cursor(
    agent_client: httpx.Client, long: Long
) -> None:
    response = agent_client.get(f"/conversations/{long.id}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["conversation"]["id"] == long.id
    assert ids_of(detail["messages"]) == long.message_ids[-50:]
    assert detail["has_more_before"] is True
    assert detail["before_cursor"] == long.message_ids[-50]

    smaller = agent_client.get(f"/conversations/{long.id}", params={"limit": 3}).json()
    assert ids_of(smaller["messages"]) == long.message_ids[-3:]
    assert smaller["before_cursor"] == long.message_ids[-3]

    whole = agent_client.get(f"/conversations/{long.id}", params={"limit": 200}).json()
    assert ids_of(whole["messages"]) == long.message_ids
    assert (whole["has_more_before"], whole["before_cursor"]) == (False, None)


def test_the_messages_route_pages_back_from_the_newest_without_duplicates_or_gaps(
    agent_client: httpx.Client, long: Long
) -> None:
    newest = page(agent_client, long.id)
    assert ids_of(newest["items"]) == long.message_ids[-50:]
    assert (newest["has_more_after"], newest["after_cursor"]) == (False, None)

    for limit in (50, 7, 1):
        seen: list[list[str]] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            got = page(agent_client, long.id, **params)
            seen.append(ids_of(got["items"]))
            if not got["has_more_before"]:
                assert got["before_cursor"] is None
                break
            assert got["before_cursor"] == got["items"][0]["id"]
            params = {"limit": limit, "before": got["before_cursor"]}
        walked = [message_id for chunk in reversed(seen) for message_id in chunk]
        assert walked == long.message_ids, f"limit {limit}"
        assert all(len(chunk) == limit for chunk in seen[:-1])
        assert 1 <= len(seen[-1]) <= limit
        # An older page knows that newer messages follow it.
        older = page(agent_client, long.id, limit=limit, before=long.message_ids[-1])
        assert older["has_more_after"] is True
        assert older["after_cursor"] == older["items"][-1]["id"]


def test_after_id_pages_forward_in_creation_order(agent_client: httpx.Client, long: Long) -> None:
    first = page(agent_client, long.id, after_id=long.message_ids[0], limit=50)
    assert ids_of(first["items"]) == long.message_ids[1:51]
    assert first["has_more_after"] is True
    assert first["after_cursor"] == long.message_ids[50]
    assert (first["has_more_before"], first["before_cursor"]) == (True, long.message_ids[1])

    walked: list[str] = []
    params: dict[str, Any] = {"after_id": "msg_not_in_this_conversation", "limit": 40}
    while True:  # an unknown after_id starts from the first message, as get_messages does
        got = page(agent_client, long.id, **params)
        walked += ids_of(got["items"])
        if not got["has_more_after"]:
            assert got["after_cursor"] is None
            break
        params = {"after_id": got["after_cursor"], "limit": 40}
    assert walked == long.message_ids

    last = page(agent_client, long.id, after_id=long.message_ids[-1])
    assert last["items"] == []
    assert (last["has_more_after"], last["after_cursor"]) == (False, None)


def test_the_default_page_and_limit_bounds(agent_client: httpx.Client, long: Long) -> None:
    assert len(page(agent_client, long.id)["items"]) == 50
    assert len(page(agent_client, long.id, limit=200)["items"]) == MESSAGES
    for bad in (0, 201, -1, "x"):
        for path in (f"/conversations/{long.id}/messages", f"/conversations/{long.id}"):
            response = agent_client.get(path, params={"limit": bad})
            assert response.status_code == 422, (path, bad, response.text)
            assert response.headers["content-type"].startswith(PROBLEM_JSON)


def test_a_bad_cursor_is_422(
    agent_client: httpx.Client, long: Long, fin: httpx.Client, server: LiveServer
) -> None:
    world = World(FinApiClient(fin, "rest"), server.fin_agent_id)
    _, elsewhere = world.conversation()
    path = f"/conversations/{long.id}/messages"
    for params in (
        {"before": "msg_unknown"},
        {"before": elsewhere["id"]},  # a message of another conversation
        {"before": long.message_ids[-1], "after_id": long.message_ids[0]},
        {"before": "m" * 256},
    ):
        response = agent_client.get(path, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert agent_client.get("/conversations/conv_nope/messages").status_code == 404
