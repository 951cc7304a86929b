"""The agent API holds text to the same rules as the inbox's forms and the CLI (``kit.text``): a
NUL byte, another control character or a 100,000-character tag, title, attribute name or article
title is a 422 problem that says why and changes nothing; a value at the limit is stored whole;
the OpenAPI document states the rules. On SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select
from support.fin import World
from support.server import LiveServer

from findesk.fin_api.client import FinApiClient
from findesk.kit.text import (
    ARTICLE_TITLE_MAX,
    ATTRIBUTE_KEY_MAX,
    CONVERSATION_TITLE_MAX,
    TAG_MAX,
    TEXT_PATTERN,
)
from findesk.knowledge.models import Article
from findesk.notifier.models import OutboxEvent

PROBLEM_JSON = "application/problem+json"
HUGE = "x" * 100_000
# name -> (a value, what the refusal says)
BAD = {
    "NUL": ("Ada\x00Lovelace", "NUL"),  # refused as the body is parsed: PostgreSQL cannot store it
    "escape sequence": ("Ada \x1b[2J", "control characters (found U+001B)"),
    "bell": ("Ada\x07", "control characters (found U+0007)"),
    "100,000 characters": (HUGE, "at most"),
}


@pytest.fixture(scope="module")
def fin_side(fin: httpx.Client, server: LiveServer) -> World:
    return World(FinApiClient(fin, "rest"), server.fin_agent_id)


def refused(response: httpx.Response, says: str) -> None:
    assert response.status_code == 422, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    said = problem["detail"] + " " + " ".join(str(e.get("msg")) for e in problem.get("errors", []))
    assert says in said, said[:500]
    assert HUGE not in said, "the refusal must not echo the value"


def outbox_count(server: LiveServer) -> int:
    with server.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def article_count(server: LiveServer) -> int:
    with server.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Article)) or 0)


PATCHES = {
    "tag": lambda value: {"tags": ["vip", value]},
    "title": lambda value: {"title": value},
    "attribute name": lambda value: {"attributes": {value: "pro"}},
}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("field", list(PATCHES))
def test_a_conversation_patch_with_bad_text_is_refused_and_changes_nothing(
    server: LiveServer, agent_client: httpx.Client, fin_side: World, field: str, bad: str
) -> None:
    cid = fin_side.open(fin_side.user()["id"], title="Keep me")["conversation"]["id"]
    before = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    events = outbox_count(server)
    value, says = BAD[bad]
    refused(agent_client.patch(f"/conversations/{cid}", json=PATCHES[field](value)), says)
    assert agent_client.get(f"/conversations/{cid}").json()["conversation"] == before
    assert outbox_count(server) == events


def test_values_at_the_limit_are_stored_whole(agent_client: httpx.Client, fin_side: World) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    tag, title, key = "t" * TAG_MAX, "é" * CONVERSATION_TITLE_MAX, "k" * ATTRIBUTE_KEY_MAX
    response = agent_client.patch(
        f"/conversations/{cid}", json={"tags": [tag], "title": title, "attributes": {key: 1}}
    )
    assert response.status_code == 200, response.text[:500]
    stored = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert (stored["tags"], stored["title"], stored["attributes"]) == ([tag], title, {key: 1})

    # A one-line field's line breaks and tabs are spaces; around it, nothing.
    response = agent_client.patch(f"/conversations/{cid}", json={"title": " Two\nlines\t"})
    assert response.json()["title"] == "Two lines"


@pytest.mark.parametrize("bad", list(BAD))
def test_an_article_with_a_bad_title_is_refused_and_nothing_is_stored(
    server: LiveServer, agent_client: httpx.Client, bad: str
) -> None:
    value, says = BAD[bad]
    existing = agent_client.post("/articles", json={"title": f"Kept {uuid.uuid4().hex}"}).json()
    count = article_count(server)
    refused(agent_client.post("/articles", json={"title": value}), says)
    refused(agent_client.patch(f"/articles/{existing['id']}", json={"title": value}), says)
    assert article_count(server) == count
    assert agent_client.get(f"/articles/{existing['id']}").json() == existing


def test_an_article_body_with_control_characters_is_refused(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    count = article_count(server)
    body = {"title": "Colours", "body": "Step 1\n\x1b[31mred\x1b[0m"}
    refused(agent_client.post("/articles", json=body), "control characters (found U+001B)")
    assert article_count(server) == count


def test_an_article_title_at_the_limit_is_stored_whole(agent_client: httpx.Client) -> None:
    title = uuid.uuid4().hex.ljust(ARTICLE_TITLE_MAX, "é")
    response = agent_client.post("/articles", json={"title": title})
    assert response.status_code == 201, response.text[:500]
    assert response.json()["title"] == title


def test_the_openapi_document_states_the_rules(server: LiveServer) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json").raise_for_status().json()
    patch = doc["components"]["schemas"]["ConversationPatch"]["properties"]
    tags = patch["tags"]["anyOf"][0]
    assert tags["maxItems"] == 100
    assert tags["items"] == {"type": "string", "maxLength": TAG_MAX, "pattern": TEXT_PATTERN}
    title = patch["title"]["anyOf"][0]
    assert title["maxLength"] == CONVERSATION_TITLE_MAX and title["pattern"] == TEXT_PATTERN
    keys = patch["attributes"]["anyOf"][0]["propertyNames"]
    assert keys == {"maxLength": ATTRIBUTE_KEY_MAX, "pattern": TEXT_PATTERN}
