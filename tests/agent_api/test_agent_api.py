"""The agent API (``/api/v1``) against a live server, on SQLite and on PostgreSQL.

Conversations are made through the Fin API, as Fin makes them; each test makes its own end user
and filters by it, so tests do not see each other's data in the shared module database.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from support.fin import World
from support.server import LiveServer

from findesk.app import create_app
from findesk.conversations.models import Conversation
from findesk.fin_api.client import FinApiClient
from findesk.kit.timeutil import utcnow
from findesk.notifier.models import OutboxEvent

PROBLEM_JSON = "application/problem+json"


# --- helpers ---------------------------------------------------------------------------------


def uid(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def fin_side(fin: httpx.Client, server: LiveServer) -> World:
    return World(FinApiClient(fin, "rest"), server.fin_agent_id)


@pytest.fixture(scope="module")
def second_agent(server: LiveServer) -> Iterator[httpx.Client]:
    with server.agent_http(f"bea-{uuid.uuid4().hex[:6]}@example.com", "Bea Second") as client:
        yield client


def listed(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """One page of a queue (every item, as long as the test made fewer than 100)."""
    params.setdefault("limit", 100)
    response = client.get("/conversations", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def listed_ids(client: httpx.Client, **params: Any) -> list[str]:
    return [c["id"] for c in listed(client, **params)]


def queue_counts(client: httpx.Client) -> dict[str, int]:
    response = client.get("/queues")
    assert response.status_code == 200, response.text
    return dict(response.json())


def outbox_count(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.conversation_id == conversation_id)
            )
            or 0
        )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    return dict(body)


def encode_cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


# --- authentication --------------------------------------------------------------------------


def agent_api_routes(server: LiveServer) -> set[tuple[str, str]]:
    """Every (method, path) under /api/v1: from the OpenAPI document, plus any route the app
    serves but leaves out of the document, so that new routes are covered automatically."""
    doc = httpx.get(f"{server.base_url}/openapi.json").raise_for_status().json()
    routes = {
        (method.upper(), path)
        for path, operations in doc["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }
    app = create_app(server.settings, server.db)
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/api/v1/"):
            routes |= {
                (m, path) for m in getattr(route, "methods", ()) if m not in {"HEAD", "OPTIONS"}
            }
    return routes


def test_the_openapi_document_lists_the_agent_api(server: LiveServer) -> None:
    routes = agent_api_routes(server)
    expected = {
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/agents"),
        ("GET", "/api/v1/conversations"),
        ("GET", "/api/v1/queues"),
        ("GET", "/api/v1/conversations/{conversation_id}"),
        ("PATCH", "/api/v1/conversations/{conversation_id}"),
        ("GET", "/api/v1/conversations/{conversation_id}/messages"),
        ("POST", "/api/v1/conversations/{conversation_id}/messages"),
        ("POST", "/api/v1/conversations/{conversation_id}/take-over"),
        ("POST", "/api/v1/conversations/{conversation_id}/hand-back"),
        ("POST", "/api/v1/conversations/{conversation_id}/typing"),
    }
    assert expected <= routes, expected - routes


BAD_CREDENTIALS = {
    "no header": None,
    "unknown bearer token": "Bearer fpt_not-a-real-token",
    "bearer without token": "Bearer",
    "basic scheme": "Basic " + base64.b64encode(b"ada:secret").decode(),
    "token without scheme": "fpt_not-a-real-token",
}


# The routes that mirror Intercom's API, and answer its error.list.
INTERCOM_SHAPED = {"/api/v1/visitors/convert", "/api/v1/conversations/{conversation_id}/convert"}
INTERCOM_PREFIXES = (
    "/api/v1/custom_object_instances",
    "/api/v1/tickets",
    "/api/v1/ticket_types",
    "/api/v1/ticket_states",
)


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
def test_every_route_refuses_missing_or_bad_credentials(
    server: LiveServer, fin_side: World, credentials: str
) -> None:
    conversation = fin_side.open(fin_side.user()["id"])["conversation"]
    header = BAD_CREDENTIALS[credentials]
    failures = []
    for method, path in sorted(agent_api_routes(server)):
        url = server.base_url + path.replace("{conversation_id}", conversation["id"])
        headers = {"Authorization": header} if header is not None else {}
        # A valid body, so that only the credentials can be the reason for refusing.
        body = {"body": "<p>hi</p>"} if method in {"POST", "PATCH"} else None
        if method == "PATCH":
            body = {"title": "sneaky"}
        response = httpx.request(method, url, headers=headers, json=body, timeout=30)
        # The routes that mirror Intercom's API answer in its error shape (error.list).
        intercom = path in INTERCOM_SHAPED or path.startswith(INTERCOM_PREFIXES)
        content_type = "application/json" if intercom else PROBLEM_JSON
        problems = []
        if response.status_code != 401:
            problems.append(f"status {response.status_code}")
        if not response.headers.get("content-type", "").startswith(content_type):
            problems.append(f"content-type {response.headers.get('content-type')!r}")
        if not response.headers.get("www-authenticate", "").lower().startswith("bearer"):
            problems.append(f"WWW-Authenticate {response.headers.get('www-authenticate')!r}")
        if problems:
            failures.append(f"{method} {path}: {', '.join(problems)}")
        elif intercom:
            assert response.json()["errors"][0]["code"] == "unauthorized"
        else:
            assert response.json()["status"] == 401
    assert not failures, "\n".join(failures)
    # Nothing was changed by the refused calls.
    got = fin_side.api.get_conversation(conversation["id"]).data
    assert got["title"] == conversation["title"]
    assert outbox_count(server, conversation["id"]) == 0


def test_a_fin_access_token_is_not_an_agent_token(server: LiveServer) -> None:
    response = httpx.get(
        f"{server.base_url}/api/v1/me",
        headers={"Authorization": f"Bearer {server.fin_token()}"},
    )
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def test_a_deactivated_agents_token_stops_working(server: LiveServer) -> None:
    from findesk.agents.models import Agent

    agent_id, token = server.new_agent(f"gone-{uuid.uuid4().hex[:6]}@example.com", "Gone Soon")
    headers = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{server.base_url}/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["id"] == agent_id
    with server.db.transaction() as session:
        session.execute(update(Agent).where(Agent.id == agent_id).values(active=False))
    assert_problem(httpx.get(f"{server.base_url}/api/v1/me", headers=headers), 401)


def test_me_is_the_calling_agent(agent_client: httpx.Client) -> None:
    me = agent_client.get("/me")
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == agent_client.agent_id  # type: ignore[attr-defined]
    assert body["name"] == "Ada Agent" and body["is_bot"] is False


# --- queues ----------------------------------------------------------------------------------


def test_handover_take_over_and_hand_back_move_a_conversation_between_queues(
    agent_client: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    me = agent_client.agent_id  # type: ignore[attr-defined]
    user = fin_side.user()["id"]
    conversation = fin_side.open(user)["conversation"]
    cid = conversation["id"]
    assert conversation["assignee"]["id"] == server.fin_agent_id

    def queues_of() -> set[str]:
        return {
            q
            for q in ("waiting", "mine", "fin")
            if cid in listed_ids(agent_client, queue=q, user_id=user)
        }

    assert queues_of() == {"fin"}
    assert cid in listed_ids(agent_client, queue="all", user_id=user)

    before = queue_counts(agent_client)
    fin_side.hand_over(cid)
    assert queues_of() == {"waiting"}
    after_handover = queue_counts(agent_client)
    assert after_handover["waiting"] == before["waiting"] + 1
    assert after_handover["fin"] == before["fin"] - 1
    assert after_handover["mine"] == before["mine"]
    assert after_handover["all"] == before["all"]
    item = listed(agent_client, queue="waiting", user_id=user)[0]
    assert item["owner"] == "waiting" and item["assignee"] is None

    taken = agent_client.post(f"/conversations/{cid}/take-over")
    assert taken.status_code == 200, taken.text
    assert taken.json()["owner"] == "human"
    assert taken.json()["assignee"]["id"] == me
    assert queues_of() == {"mine"}
    after_take = queue_counts(agent_client)
    assert after_take["mine"] == after_handover["mine"] + 1
    assert after_take["waiting"] == after_handover["waiting"] - 1
    # Fin sees the human as the assignee.
    assert fin_side.api.get_conversation(cid).data["assignee"]["id"] == me

    back = agent_client.post(f"/conversations/{cid}/hand-back")
    assert back.status_code == 200, back.text
    assert back.json()["owner"] == "fin"
    assert back.json()["assignee"]["id"] == server.fin_agent_id
    assert queues_of() == {"fin"}
    after_back = queue_counts(agent_client)
    assert after_back["fin"] == after_take["fin"] + 1
    assert after_back["mine"] == after_take["mine"] - 1


def test_mine_is_per_agent(
    agent_client: httpx.Client, second_agent: httpx.Client, fin_side: World
) -> None:
    user = fin_side.user()["id"]
    cid = fin_side.open(user)["conversation"]["id"]
    assert second_agent.post(f"/conversations/{cid}/take-over").status_code == 200
    assert cid in listed_ids(second_agent, queue="mine", user_id=user)
    assert cid not in listed_ids(agent_client, queue="mine", user_id=user)
    # Taking over from another agent is allowed and moves it to the taker's queue.
    assert agent_client.post(f"/conversations/{cid}/take-over").status_code == 200
    assert cid in listed_ids(agent_client, queue="mine", user_id=user)
    assert cid not in listed_ids(second_agent, queue="mine", user_id=user)


def test_queue_counts_are_of_open_conversations(
    agent_client: httpx.Client, fin_side: World
) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    fin_side.hand_over(cid)
    before = queue_counts(agent_client)
    assert (
        agent_client.patch(f"/conversations/{cid}", json={"status": "resolved"}).status_code == 200
    )
    after = queue_counts(agent_client)
    assert after["waiting"] == before["waiting"] - 1
    assert after["all"] == before["all"] - 1


def test_snooze_through_the_api(agent_client: httpx.Client, fin_side: World) -> None:
    user = fin_side.user()["id"]
    cid = fin_side.open(user)["conversation"]["id"]
    fin_side.hand_over(cid)
    before = queue_counts(agent_client)
    at = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    until = at.astimezone(timezone(timedelta(hours=1))).isoformat()  # "…T09:00:00+01:00"

    snoozed = agent_client.patch(f"/conversations/{cid}", json={"snoozed_until": until})
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["snoozed_until"] == at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert listed_ids(agent_client, queue="snoozed", user_id=user) == [cid]
    assert listed_ids(agent_client, queue="waiting", user_id=user) == []
    assert listed_ids(agent_client, queue="all", user_id=user) == [cid]
    counts = queue_counts(agent_client)
    assert (counts["waiting"], counts["snoozed"], counts["all"]) == (
        before["waiting"] - 1,
        before["snoozed"] + 1,
        before["all"],
    )

    # A time without its zone, in the past or over a year ahead is refused, saying why.
    for value, reason in (
        ("2030-01-01T09:00:00", "timezone"),
        ("2020-01-01T09:00:00Z", "in the future"),
        ("2999-01-01T09:00:00Z", "a year at most"),
    ):
        refused = agent_client.patch(f"/conversations/{cid}", json={"snoozed_until": value})
        assert refused.status_code == 422, (value, refused.text)
        assert reason in refused.text, (value, refused.text)

    woken = agent_client.patch(f"/conversations/{cid}", json={"snoozed_until": None})
    assert woken.status_code == 200 and woken.json()["snoozed_until"] is None
    assert listed_ids(agent_client, queue="waiting", user_id=user) == [cid]
    assert queue_counts(agent_client) == before


def test_filters_by_status_and_tag(agent_client: httpx.Client, fin_side: World) -> None:
    user = fin_side.user()["id"]
    a = fin_side.open(user)["conversation"]["id"]
    b = fin_side.open(user)["conversation"]["id"]
    c = fin_side.open(user)["conversation"]["id"]
    fin_side.update(a, tags=["billing"])
    fin_side.update(b, tags=["billing", "vip"], status="resolved")
    fin_side.update(c, status="closed")

    def ids(**params: Any) -> set[str]:
        return set(listed_ids(agent_client, user_id=user, **params))

    assert ids() == {a, b, c}
    assert ids(status="open") == {a}
    assert ids(status="resolved") == {b}
    assert ids(status=["resolved", "closed"]) == {b, c}
    assert ids(tag="billing") == {a, b}
    assert ids(tag="vip") == {b}
    assert ids(tag="billing", status="open") == {a}
    assert ids(tag="no-such-tag") == set()
    assert ids(status="ended") == set()
    for item in listed(agent_client, user_id=user, tag="billing"):
        assert "billing" in item["tags"]

    assert_problem(agent_client.get("/conversations", params={"status": "snoozed"}), 422)
    assert_problem(agent_client.get("/conversations", params={"queue": "everything"}), 422)
    assert_problem(agent_client.get("/conversations", params={"limit": 0}), 422)
    assert_problem(agent_client.get("/conversations", params={"limit": 101}), 422)


def test_newest_activity_first(agent_client: httpx.Client, fin_side: World) -> None:
    user = fin_side.user()["id"]
    a = fin_side.open(user)["conversation"]["id"]
    b = fin_side.open(user)["conversation"]["id"]
    c = fin_side.open(user)["conversation"]["id"]
    assert listed_ids(agent_client, user_id=user) == [c, b, a]

    fin_side.user_says(a, user, "<p>Anyone there?</p>")
    assert listed_ids(agent_client, user_id=user) == [a, c, b]

    assert (
        agent_client.post(f"/conversations/{b}/messages", json={"body": "On it"}).status_code == 201
    )
    items = listed(agent_client, user_id=user)
    assert [i["id"] for i in items] == [b, a, c]
    stamps = [i["last_activity_at"] for i in items]
    assert stamps == sorted(stamps, reverse=True)


def walk(client: httpx.Client, limit: int, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    for _ in range(100):
        query = dict(params, limit=limit)
        if cursor:
            query["cursor"] = cursor
        response = client.get("/conversations", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([c["id"] for c in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("pagination never ended")


def test_cursor_pagination_walks_every_conversation_once(
    agent_client: httpx.Client, fin_side: World
) -> None:
    user = fin_side.user()["id"]
    created = [fin_side.open(user)["conversation"]["id"] for _ in range(7)]
    pages = walk(agent_client, 3, user_id=user)
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [cid for page in pages for cid in page]
    assert len(flat) == len(set(flat)) == 7
    assert flat == list(reversed(created))
    assert flat == listed_ids(agent_client, user_id=user)

    # An exact multiple of the page size: no empty trailing page.
    pages = walk(agent_client, 7, user_id=user)
    assert pages == [flat]


def test_cursor_pagination_with_equal_activity_times(
    agent_client: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    """Conversations with the same last activity (e.g. a bulk import) are neither skipped nor
    repeated across pages."""
    user = fin_side.user()["id"]
    created = {fin_side.open(user)["conversation"]["id"] for _ in range(5)}
    stamp = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    with server.db.transaction() as session:
        session.execute(
            update(Conversation).where(Conversation.id.in_(created)).values(last_activity_at=stamp)
        )
    for limit in (1, 2, 3):
        flat = [cid for page in walk(agent_client, limit, user_id=user) for cid in page]
        assert len(flat) == len(set(flat)) == 5, (limit, flat)
        assert set(flat) == created


BAD_CURSORS = {
    "not base64": "not-a-cursor!!",
    "empty object": "e30",
    "numbers": encode_cursor([1, 2]),
    "not a date": encode_cursor(["yesterday", "conv_x"]),
    "one element": encode_cursor(["2025-01-01T00:00:00+00:00"]),
    "object": encode_cursor({"at": "2025-01-01T00:00:00+00:00", "id": "conv_x"}),
    "before year 1 in UTC": encode_cursor(["0001-01-01T00:00:00+05:00", "conv_x"]),
    "after year 9999 in UTC": encode_cursor(["9999-12-31T23:59:59-05:00", "conv_x"]),
    "too long": "x" * 600,
}


@pytest.mark.parametrize("cursor", list(BAD_CURSORS), ids=list(BAD_CURSORS))
def test_a_bad_cursor_is_422(agent_client: httpx.Client, cursor: str) -> None:
    response = agent_client.get("/conversations", params={"cursor": BAD_CURSORS[cursor]})
    assert_problem(response, 422)


# --- one conversation ------------------------------------------------------------------------


def test_get_conversation_returns_its_messages_in_order(
    agent_client: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    user = fin_side.user()["id"]
    created = fin_side.open(user, body="<p>first</p>", title="Refund")
    cid = created["conversation"]["id"]
    second = fin_side.fin_says(cid, "<p>second, from Fin</p>")
    third = fin_side.user_says(cid, user, "<p>third</p>")
    fourth = agent_client.post(
        f"/conversations/{cid}/messages", json={"body": "<p>fourth</p>", "visibility": "private"}
    ).json()

    response = agent_client.get(f"/conversations/{cid}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["conversation"]["id"] == cid
    assert detail["conversation"]["title"] == "Refund"
    assert detail["conversation"]["user"]["id"] == user
    assert detail["conversation"]["owner"] == "fin"
    messages = detail["messages"]
    assert [m["id"] for m in messages] == [
        created["initial_message"]["id"],
        second["id"],
        third["id"],
        fourth["id"],
    ]
    assert [m["body"] for m in messages] == [
        "<p>first</p>",
        "<p>second, from Fin</p>",
        "<p>third</p>",
        "<p>fourth</p>",
    ]
    assert [m["author"]["user_type"] for m in messages] == [
        "end_user",
        "agent",
        "end_user",
        "agent",
    ]
    assert messages[1]["author"]["id"] == server.fin_agent_id
    assert messages[3]["author"]["id"] == agent_client.agent_id  # type: ignore[attr-defined]
    assert [m["visibility"] for m in messages] == ["public", "public", "public", "private"]

    assert (detail["has_more_before"], detail["before_cursor"]) == (False, None)

    # The messages route agrees, and after_id gives only the later ones.
    listed_messages = agent_client.get(f"/conversations/{cid}/messages").json()
    assert [m["id"] for m in listed_messages["items"]] == [m["id"] for m in messages]
    assert listed_messages["has_more_before"] is listed_messages["has_more_after"] is False
    later = agent_client.get(f"/conversations/{cid}/messages", params={"after_id": second["id"]})
    assert [m["id"] for m in later.json()["items"]] == [third["id"], fourth["id"]]


def test_unknown_conversation_is_404(agent_client: httpx.Client) -> None:
    assert_problem(agent_client.get("/conversations/conv_doesnotexist"), 404)
    assert_problem(agent_client.get("/conversations/conv_doesnotexist/messages"), 404)
    assert_problem(
        agent_client.post("/conversations/conv_doesnotexist/messages", json={"body": "hi"}), 404
    )
    assert_problem(agent_client.patch("/conversations/conv_doesnotexist", json={"title": "x"}), 404)
    assert_problem(agent_client.post("/conversations/conv_doesnotexist/take-over"), 404)
    assert_problem(agent_client.post("/conversations/conv_doesnotexist/hand-back"), 404)


# --- replies and notes -----------------------------------------------------------------------


def test_a_reply_is_sanitised(agent_client: httpx.Client, fin_side: World) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    dirty = (
        "<p>Hi <strong>there</strong>, <em>see</em> "
        '<a href="javascript:alert(1)">this</a> and <a href="https://example.com/help">that</a>'
        '<script>alert("pwned")</script>'
        '<img src="https://example.com/x.png" onerror="alert(2)"></p>'
        '<h4>Steps</h4><div onclick="alert(3)">text kept</div>'
    )
    response = agent_client.post(f"/conversations/{cid}/messages", json={"body": dirty})
    assert response.status_code == 201, response.text
    body = response.json()["body"]
    lowered = body.lower()
    for banned in (
        "<script",
        "pwned",
        "onerror",
        "onclick",
        "javascript:",
        "<strong",
        "<em",
        "<div",
        "<h4",
    ):
        assert banned not in lowered, (banned, body)
    assert "<b>there</b>" in body
    assert "<i>see</i>" in body
    assert "<h2>Steps</h2>" in body
    assert 'href="https://example.com/help"' in body
    assert '<img src="https://example.com/x.png"' in body
    assert "text kept" in body

    # Stored sanitised: Fin reads the same clean body.
    fin_messages = fin_side.api.get_messages(cid).data
    assert fin_messages[-1]["body"] == body


def test_an_empty_reply_is_422(agent_client: httpx.Client, fin_side: World) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    for body in ({"body": ""}, {"body": "<script>alert(1)</script>"}, {"body": "<p> </p>"}, {}):
        assert_problem(agent_client.post(f"/conversations/{cid}/messages", json=body), 422)
    assert_problem(
        agent_client.post(
            f"/conversations/{cid}/messages", json={"body": "x", "visibility": "secret"}
        ),
        422,
    )
    assert len(fin_side.api.get_messages(cid).data) == 1


def test_a_public_reply_takes_over_from_fin(agent_client: httpx.Client, fin_side: World) -> None:
    me = agent_client.agent_id  # type: ignore[attr-defined]
    user = fin_side.user()["id"]
    cid = fin_side.open(user)["conversation"]["id"]
    response = agent_client.post(
        f"/conversations/{cid}/messages", json={"body": "<p>I'll help</p>"}
    )
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["visibility"] == "public"
    assert message["author"]["id"] == me

    conversation = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert conversation["owner"] == "human"
    assert conversation["assignee"]["id"] == me
    assert fin_side.api.get_conversation(cid).data["assignee"]["id"] == me
    assert cid in listed_ids(agent_client, queue="mine", user_id=user)
    # The end user sees it: Fin reads it as a public message by the agent.
    fin_view = fin_side.api.get_messages(cid).data[-1]
    assert fin_view["id"] == message["id"]
    assert fin_view["visibility"] == "public"
    assert fin_view["author"] == {
        "id": me,
        "user_type": "agent",
        "name": "Ada Agent",
        "email": fin_view["author"]["email"],
        "photo_url": None,
        "alias": None,
    }


def test_a_public_reply_on_a_waiting_conversation_takes_it(
    agent_client: httpx.Client, fin_side: World
) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    fin_side.hand_over(cid)
    assert (
        agent_client.post(f"/conversations/{cid}/messages", json={"body": "Hello"}).status_code
        == 201
    )
    conversation = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert conversation["owner"] == "human"
    assert conversation["assignee"]["id"] == agent_client.agent_id  # type: ignore[attr-defined]


def test_a_public_reply_does_not_steal_from_another_human(
    agent_client: httpx.Client, second_agent: httpx.Client, fin_side: World
) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    assert second_agent.post(f"/conversations/{cid}/take-over").status_code == 200
    assert (
        agent_client.post(f"/conversations/{cid}/messages", json={"body": "Chiming in"}).status_code
        == 201
    )
    conversation = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert conversation["owner"] == "human"
    assert conversation["assignee"]["id"] == second_agent.agent_id  # type: ignore[attr-defined]


def test_a_private_note_does_not_take_over(
    agent_client: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    response = agent_client.post(
        f"/conversations/{cid}/messages",
        json={"body": "<p>Customer is on the legacy plan</p>", "visibility": "private"},
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert note["visibility"] == "private"

    conversation = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert conversation["owner"] == "fin"
    assert conversation["assignee"]["id"] == server.fin_agent_id

    fin_messages = fin_side.api.get_messages(cid).data
    assert fin_messages[-1]["id"] == note["id"]
    assert fin_messages[-1]["visibility"] == "private"
    assert fin_side.api.get_conversation(cid).data["assignee"]["id"] == server.fin_agent_id

    # On a waiting conversation a note leaves it waiting.
    fin_side.hand_over(cid)
    agent_client.post(
        f"/conversations/{cid}/messages", json={"body": "note", "visibility": "private"}
    )
    assert agent_client.get(f"/conversations/{cid}").json()["conversation"]["owner"] == "waiting"


def test_an_end_user_message_reopens_a_resolved_conversation(
    agent_client: httpx.Client, fin_side: World
) -> None:
    user = fin_side.user()["id"]
    cid = fin_side.open(user)["conversation"]["id"]
    assert (
        agent_client.patch(f"/conversations/{cid}", json={"status": "resolved"}).json()["status"]
        == "resolved"
    )
    fin_side.user_says(cid, user, "<p>Actually, one more thing</p>")
    assert agent_client.get(f"/conversations/{cid}").json()["conversation"]["status"] == "open"


# --- PATCH -----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(
    agent_client: httpx.Client, second_agent: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    cid = fin_side.open(fin_side.user()["id"], title="Original")["conversation"]["id"]
    fin_side.update(cid, tags=["a", "b"], attributes={"plan": "pro", "seats": 5})

    def patch(changes: dict[str, Any]) -> dict[str, Any]:
        response = agent_client.patch(f"/conversations/{cid}", json=changes)
        assert response.status_code == 200, response.text
        fetched = agent_client.get(f"/conversations/{cid}").json()["conversation"]
        returned = response.json()
        for key in ("status", "title", "tags", "attributes", "assignee", "owner"):
            assert returned[key] == fetched[key], key
        return dict(fetched)

    def state(c: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": c["status"],
            "title": c["title"],
            "tags": c["tags"],
            "attributes": c["attributes"],
            "assignee": (c["assignee"] or {}).get("id"),
        }

    start = state(agent_client.get(f"/conversations/{cid}").json()["conversation"])
    assert start == {
        "status": "open",
        "title": "Original",
        "tags": ["a", "b"],
        "attributes": {"plan": "pro", "seats": 5},
        "assignee": server.fin_agent_id,
    }

    after = state(patch({"title": "Renamed"}))
    assert after == dict(start, title="Renamed")

    after = state(patch({"attributes": {"seats": None, "region": "eu"}}))
    assert after["attributes"] == {"plan": "pro", "region": "eu"}
    assert after == dict(start, title="Renamed", attributes={"plan": "pro", "region": "eu"})

    after = state(patch({"tags": ["c"]}))
    assert after["tags"] == ["c"]

    after = state(patch({"status": "resolved"}))
    assert after["status"] == "resolved"
    assert after["title"] == "Renamed" and after["tags"] == ["c"]

    other = second_agent.agent_id  # type: ignore[attr-defined]
    assigned = patch({"assignee_id": other})
    assert state(assigned)["assignee"] == other and assigned["owner"] == "human"
    assert state(assigned)["status"] == "resolved"

    unassigned = patch({"assignee_id": None})
    assert unassigned["assignee"] is None and unassigned["owner"] == "waiting"

    after = state(patch({"tags": []}))
    assert after["tags"] == []
    assert after == {
        "status": "resolved",
        "title": "Renamed",
        "tags": [],
        "attributes": {"plan": "pro", "region": "eu"},
        "assignee": None,
    }
    # Fin sees the same.
    fin_view = fin_side.api.get_conversation(cid).data
    assert (fin_view["title"], fin_view["tags"], fin_view["attributes"], fin_view["assignee"]) == (
        "Renamed",
        [],
        {"plan": "pro", "region": "eu"},
        None,
    )


def test_patch_refuses_bad_input_and_changes_nothing(
    agent_client: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    cid = fin_side.open(fin_side.user()["id"], title="Keep me")["conversation"]["id"]
    before = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    events_before = outbox_count(server, cid)

    assert_problem(
        agent_client.patch(f"/conversations/{cid}", json={"assignee_id": "agt_nobody"}), 404
    )
    # A bad assignee in the same request as a good title: all or nothing.
    assert_problem(
        agent_client.patch(
            f"/conversations/{cid}", json={"title": "Changed", "assignee_id": "agt_nobody"}
        ),
        404,
    )
    assert_problem(agent_client.patch(f"/conversations/{cid}", json={"status": "snoozed"}), 422)
    assert_problem(agent_client.patch(f"/conversations/{cid}", json={"priority": "high"}), 422)
    assert_problem(
        agent_client.patch(f"/conversations/{cid}", json={"title": "x", "colour": "red"}), 422
    )
    assert_problem(agent_client.patch(f"/conversations/{cid}", json={"tags": "not-a-list"}), 422)
    assert_problem(agent_client.patch(f"/conversations/{cid}", json={"attributes": ["no"]}), 422)
    bad_json = agent_client.patch(
        f"/conversations/{cid}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(bad_json, 400)

    after = agent_client.get(f"/conversations/{cid}").json()["conversation"]
    assert after == before
    assert outbox_count(server, cid) == events_before


# --- typing ----------------------------------------------------------------------------------


def test_typing(agent_client: httpx.Client, fin_side: World, server: LiveServer) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    response = agent_client.post(f"/conversations/{cid}/typing")
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": True}
    # Typing is ephemeral: nothing is queued for a sync.
    assert outbox_count(server, cid) == 0
    assert_problem(agent_client.post("/conversations/conv_doesnotexist/typing"), 404)


# --- the outbox: what Fin hears about --------------------------------------------------------


def test_every_agent_action_records_an_event_for_fin(
    agent_client: httpx.Client, second_agent: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    cid = fin_side.open(fin_side.user()["id"])["conversation"]["id"]
    assert outbox_count(server, cid) == 0, (
        "creating a conversation through the Fin API is Fin's own change"
    )
    other = second_agent.agent_id  # type: ignore[attr-defined]

    actions: list[tuple[str, str, str, dict[str, Any] | None]] = [
        ("reply", "POST", f"/conversations/{cid}/messages", {"body": "Hello from a human"}),
        (
            "note",
            "POST",
            f"/conversations/{cid}/messages",
            {"body": "internal", "visibility": "private"},
        ),
        ("status", "PATCH", f"/conversations/{cid}", {"status": "resolved"}),
        ("assign", "PATCH", f"/conversations/{cid}", {"assignee_id": other}),
        ("unassign", "PATCH", f"/conversations/{cid}", {"assignee_id": None}),
        ("tags", "PATCH", f"/conversations/{cid}", {"tags": ["vip"]}),
        ("attributes", "PATCH", f"/conversations/{cid}", {"attributes": {"plan": "pro"}}),
        ("title", "PATCH", f"/conversations/{cid}", {"title": "Renamed by a human"}),
        ("take-over", "POST", f"/conversations/{cid}/take-over", None),
        ("hand-back", "POST", f"/conversations/{cid}/hand-back", None),
    ]
    silent = []
    for name, method, path, body in actions:
        before = outbox_count(server, cid)
        response = agent_client.request(method, path, json=body)
        assert response.is_success, (name, response.text)
        if outbox_count(server, cid) <= before:
            silent.append(name)
    assert not silent, f"agent actions that Fin would not hear about: {silent}"

    with server.db.read_session() as session:
        states = set(
            session.scalars(select(OutboxEvent.state).where(OutboxEvent.conversation_id == cid))
        )
    assert states <= {"pending", "delivered"}


def test_fins_own_changes_record_no_event(fin_side: World, server: LiveServer) -> None:
    user = fin_side.user()["id"]
    cid = fin_side.open(user)["conversation"]["id"]
    fin_side.fin_says(cid, "<p>Here is how</p>")
    fin_side.user_says(cid, user, "<p>Thanks</p>")
    fin_side.update(cid, title="Set by Fin")
    fin_side.update(cid, tags=["fin-tag"])
    fin_side.update(cid, attributes={"topic": "billing"})
    fin_side.update(cid, status="resolved")
    fin_side.update(cid, status="open")
    fin_side.hand_over(cid)
    fin_side.update(cid, assignee_id=fin_side.fin_agent_id)
    assert fin_side.api.update_user(user, attributes={"tier": "gold"}).status == 200

    conversation = fin_side.api.get_conversation(cid).data
    assert conversation["title"] == "Set by Fin" and conversation["tags"] == ["fin-tag"]
    assert outbox_count(server, cid) == 0
