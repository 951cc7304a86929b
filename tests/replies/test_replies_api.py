"""Saved replies and macros through the agent API, against a live server on SQLite and on
PostgreSQL: who may see and change them, placeholders, and macros applied atomically through
the conversations' own actions (history, Fin's events)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.fin import World
from support.server import LiveServer

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.conversations.models import ConversationEvent, Message
from findesk.notifier.models import OutboxEvent

PROBLEM_JSON = "application/problem+json"


def _client(server: LiveServer, name: str, role: str = "agent") -> httpx.Client:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
    with server.db.transaction() as session:
        agent = create_agent(session, email=email, name=name, alias=f"{name} (support)", role=role)
        agent_id, token = agent.id, create_agent_token(session, agent)
    client = httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    client.agent_id = agent_id  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "Ada Admin", role="admin") as client:
        yield client


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "Alice Agent") as client:
        yield client


@pytest.fixture(scope="module")
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "Bob Agent") as client:
        yield client


@pytest.fixture(scope="module")
def fin_side(server: LiveServer) -> World:
    return server.fin_world()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    return dict(response.json())


def conversation(fin_side: World, **user: Any) -> str:
    user_id = fin_side.user(**{"name": "Jane Doe", "email": "jane@example.com", **user})["id"]
    return str(fin_side.open(user_id)["conversation"]["id"])


def snapshot(server: LiveServer, conversation_id: str) -> dict[str, Any]:
    with server.db.read_session() as session:
        return {
            "messages": session.scalars(
                select(Message.id).where(Message.conversation_id == conversation_id)
            ).all(),
            "history": session.scalars(
                select(ConversationEvent.kind).where(
                    ConversationEvent.conversation_id == conversation_id
                )
            ).all(),
            "outbox": outbox_reasons(server, conversation_id),
        }


def outbox_reasons(server: LiveServer, conversation_id: str) -> Counter[str]:
    with server.db.read_session() as session:
        return Counter(
            session.scalars(
                select(OutboxEvent.reason).where(OutboxEvent.conversation_id == conversation_id)
            ).all()
        )


# --- saved replies ------------------------------------------------------------------------------


def test_an_agent_keeps_personal_replies_that_nobody_else_sees(
    alice: httpx.Client, bob: httpx.Client
) -> None:
    created = ok(
        alice.post("/saved-replies", json={"title": "Hello", "body": "<p>Hi {{user.name}}</p>"}),
        201,
    )
    assert created["shared"] is False and created["owner_id"] == alice.agent_id  # type: ignore[attr-defined]
    assert created["can_edit"] is True
    reply_id = created["id"]
    assert reply_id in [r["id"] for r in ok(alice.get("/saved-replies"))]
    assert reply_id not in [r["id"] for r in ok(bob.get("/saved-replies"))]
    for response in (
        bob.get(f"/saved-replies/{reply_id}"),
        bob.patch(f"/saved-replies/{reply_id}", json={"title": "Mine now"}),
        bob.delete(f"/saved-replies/{reply_id}"),
    ):
        problem(response, 404)
    changed = ok(alice.patch(f"/saved-replies/{reply_id}", json={"title": "Hello there"}))
    assert changed["title"] == "Hello there" and changed["body"] == "<p>Hi {{user.name}}</p>"
    assert [r["title"] for r in ok(alice.get("/saved-replies", params={"q": "there"}))] == [
        "Hello there"
    ]
    ok(alice.delete(f"/saved-replies/{reply_id}"), 204)
    problem(alice.get(f"/saved-replies/{reply_id}"), 404)


def test_only_administrators_manage_shared_replies_which_everyone_uses(
    admin: httpx.Client, alice: httpx.Client
) -> None:
    refused = problem(
        alice.post("/saved-replies", json={"title": "Team", "body": "x", "shared": True}), 403
    )
    assert "administrators" in refused["detail"]
    shared = ok(
        admin.post(
            "/saved-replies",
            json={"title": "Team hello", "body": "<p>Hello from the team</p>", "shared": True},
        ),
        201,
    )
    assert shared["shared"] is True and shared["owner_id"] is None
    seen = {r["id"]: r for r in ok(alice.get("/saved-replies"))}
    assert seen[shared["id"]]["can_edit"] is False
    problem(alice.patch(f"/saved-replies/{shared['id']}", json={"title": "Mine"}), 403)
    problem(alice.delete(f"/saved-replies/{shared['id']}"), 403)
    ok(admin.patch(f"/saved-replies/{shared['id']}", json={"body": "<p>Hello, all</p>"}))
    assert ok(alice.get(f"/saved-replies/{shared['id']}"))["body"] == "<p>Hello, all</p>"


def test_an_unknown_or_malformed_placeholder_is_refused_when_saved(alice: httpx.Client) -> None:
    for body in (
        "<p>Hi {{user.nmae}}</p>",
        "<p>{{ user name }}</p>",
        "{{conversation.attributes.}}",
    ):
        refused = problem(alice.post("/saved-replies", json={"title": "Bad", "body": body}), 422)
        assert "placeholder" in refused["detail"], refused
        assert "{{user.name}}" in refused["detail"]  # says which ones exist
    reply_id = ok(alice.post("/saved-replies", json={"title": "Good", "body": "<p>ok</p>"}), 201)[
        "id"
    ]
    problem(alice.patch(f"/saved-replies/{reply_id}", json={"body": "{{agent.salary}}"}), 422)
    assert ok(alice.get(f"/saved-replies/{reply_id}"))["body"] == "<p>ok</p>"


def test_the_body_is_sanitised_as_replies_are(alice: httpx.Client) -> None:
    created = ok(
        alice.post(
            "/saved-replies",
            json={"title": "Sneaky", "body": '<p onclick="x()">Hi<script>alert(1)</script></p>'},
        ),
        201,
    )
    assert created["body"] == "<p>Hi</p>"
    problem(
        alice.post("/saved-replies", json={"title": "Blank", "body": "<script>x</script>"}), 422
    )


def test_placeholders_are_filled_for_the_conversation(
    alice: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    conversation_id = conversation(fin_side, name="Jane <Doe>", email="jane@example.com")
    ok(alice.patch(f"/conversations/{conversation_id}", json={"attributes": {"plan": "Pro"}}))
    body = (
        "<p>Hi {{user.name}} ({{ user.email }}), I am {{agent.alias}} ({{agent.name}}). "
        "Plan: {{conversation.attributes.plan}}; order: {{conversation.attributes.order|none yet}}"
        "; missing: [{{conversation.attributes.missing}}]</p>"
    )
    reply_id = ok(alice.post("/saved-replies", json={"title": "Full", "body": body}), 201)["id"]
    rendered = ok(alice.get(f"/conversations/{conversation_id}/saved-replies/{reply_id}/render"))
    assert rendered["html"] == (
        "<p>Hi Jane &lt;Doe&gt; (jane@example.com), I am Alice Agent (support) (Alice Agent). "
        "Plan: Pro; order: none yet; missing: []</p>"
    )
    assert rendered["text"].startswith("Hi Jane <Doe> (jane@example.com)")
    # Rendering sends nothing.
    assert outbox_reasons(server, conversation_id)["message"] == 0
    problem(alice.get(f"/conversations/conv_nope/saved-replies/{reply_id}/render"), 404)
    problem(alice.get(f"/conversations/{conversation_id}/saved-replies/rep_nope/render"), 404)


def test_a_reply_links_a_published_article_at_the_page_fin_cites(
    admin: httpx.Client, alice: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    draft = ok(admin.post("/articles", json={"title": "Refunds", "body": "Within 30 days."}), 201)
    refused = problem(
        alice.post(
            "/saved-replies",
            json={"title": "Refund", "body": "<p>See:</p>", "article_id": draft["id"]},
        ),
        422,
    )
    assert "published article" in refused["detail"]
    article = ok(admin.post(f"/articles/{draft['id']}/publish"))
    created = ok(
        alice.post(
            "/saved-replies",
            json={"title": "Refund", "body": "<p>See:</p>", "article_id": article["id"]},
        ),
        201,
    )
    assert created["article_url"] == article["url"]
    assert article["url"].endswith(f"/help/{article['slug']}")
    conversation_id = conversation(fin_side)
    rendered = ok(
        alice.get(f"/conversations/{conversation_id}/saved-replies/{created['id']}/render")
    )
    assert f'<a href="{article["url"]}"' in rendered["html"]
    assert ">Refunds</a>" in rendered["html"]
    cleared = ok(alice.patch(f"/saved-replies/{created['id']}", json={"article_id": None}))
    assert cleared["article_id"] is None and cleared["article_url"] is None


# --- macros -----------------------------------------------------------------------------------


def test_a_macro_applies_every_action_through_the_conversations_actions(
    alice: httpx.Client, bob: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    reply_id = ok(
        alice.post(
            "/saved-replies",
            json={"title": "Refund done", "body": "<p>Done, {{user.name|there}}!</p>"},
        ),
        201,
    )["id"]
    actions = [
        {"type": "take_over"},
        {"type": "reply", "saved_reply_id": reply_id},
        {"type": "note", "body": "<p>Refunded for {{user.email}}</p>"},
        {"type": "add_tags", "tags": ["refund", "billing"]},
        {"type": "set_attributes", "attributes": {"refunded": True}},
        {"type": "set_status", "status": "resolved"},
    ]
    macro = ok(alice.post("/macros", json={"name": "Refund", "actions": actions}), 201)
    assert macro["actions"][1] == {"type": "reply", "saved_reply_id": reply_id}
    problem(bob.post(f"/conversations/{conversation(fin_side)}/macros/{macro['id']}"), 404)

    by_macro = conversation(fin_side)
    ok(alice.patch(f"/conversations/{by_macro}", json={"tags": ["vip"]}))
    before = outbox_reasons(server, by_macro)
    applied = ok(alice.post(f"/conversations/{by_macro}/macros/{macro['id']}"))
    got = applied["conversation"]
    assert got["assignee"]["id"] == alice.agent_id  # type: ignore[attr-defined]
    assert got["owner"] == "human" and got["status"] == "resolved"
    assert got["tags"] == ["vip", "refund", "billing"]
    assert got["attributes"]["refunded"] is True
    assert [(m["visibility"], m["body"]) for m in applied["messages"]] == [
        ("public", "<p>Done, Jane Doe!</p>"),
        ("private", "<p>Refunded for jane@example.com</p>"),
    ]
    history = ok(alice.get(f"/conversations/{by_macro}/history"))["items"]
    kinds = [e["kind"] for e in history]
    # (resolved by a person: findesk asks the customer for a rating, findesk.csat)
    assert kinds[kinds.index("macro") :] == [
        "macro",
        "take_over",
        "tags",
        "attributes",
        "status",
        "rating_requested",
    ]
    macro_event = history[kinds.index("macro")]
    assert macro_event["to_value"] == "Refund"
    assert macro_event["actor_agent"]["id"] == alice.agent_id  # type: ignore[attr-defined]
    assert macro_event["detail"]["macro_id"] == macro["id"]

    # Fin hears of each change exactly as when an agent does the same by hand.
    by_hand = conversation(fin_side)
    ok(alice.patch(f"/conversations/{by_hand}", json={"tags": ["vip"]}))
    hand_before = outbox_reasons(server, by_hand)
    ok(alice.post(f"/conversations/{by_hand}/take-over"))
    ok(
        alice.post(f"/conversations/{by_hand}/messages", json={"body": "<p>Done, Jane Doe!</p>"}),
        201,
    )
    ok(
        alice.post(
            f"/conversations/{by_hand}/messages",
            json={"body": "<p>Refunded</p>", "visibility": "private"},
        ),
        201,
    )
    ok(
        alice.patch(
            f"/conversations/{by_hand}",
            json={"tags": ["vip", "refund", "billing"], "attributes": {"refunded": True}},
        )
    )
    ok(alice.patch(f"/conversations/{by_hand}", json={"status": "resolved"}))
    macro_events = outbox_reasons(server, by_macro) - before
    hand_events = outbox_reasons(server, by_hand) - hand_before
    assert macro_events == hand_events
    # Two replies and the rating request (findesk.csat) the resolve writes.
    assert macro_events["assignee"] == 1 and macro_events["message"] == 3


def test_a_macro_with_a_failing_action_changes_nothing(
    admin: httpx.Client, alice: httpx.Client, fin_side: World, server: LiveServer
) -> None:
    helper_id, _ = server.new_agent(f"helper-{uuid.uuid4().hex[:6]}@example.com", "Helper")
    reply_id = ok(alice.post("/saved-replies", json={"title": "Ack", "body": "<p>On it</p>"}), 201)[
        "id"
    ]
    macro = ok(
        alice.post(
            "/macros",
            json={
                "name": "Escalate",
                "actions": [
                    {"type": "take_over"},
                    {"type": "reply", "saved_reply_id": reply_id},
                    {"type": "add_tags", "tags": ["escalated"]},
                    {"type": "assign", "agent_id": helper_id},
                ],
            },
        ),
        201,
    )
    # The helper leaves after the macro was saved: its last action can no longer be done.
    ok(admin.post(f"/agents/{helper_id}/deactivate"))
    conversation_id = conversation(fin_side)
    before = snapshot(server, conversation_id)
    refused = problem(alice.post(f"/conversations/{conversation_id}/macros/{macro['id']}"), 422)
    assert "action 4 (assign)" in refused["detail"] and "Nothing was changed" in refused["detail"]
    assert snapshot(server, conversation_id) == before
    got = ok(alice.get(f"/conversations/{conversation_id}"))["conversation"]
    assert got["owner"] == "fin" and got["tags"] == []


def test_macro_actions_must_name_what_exists_and_may_be_used(
    admin: httpx.Client, alice: httpx.Client, bob: httpx.Client
) -> None:
    personal = ok(alice.post("/saved-replies", json={"title": "Mine", "body": "<p>x</p>"}), 201)
    for actions, expected in (
        ([{"type": "reply", "saved_reply_id": "rep_missing"}], "no saved reply"),
        ([{"type": "reply", "saved_reply_id": personal["id"]}], "no saved reply"),  # Bob's view
        ([{"type": "assign", "agent_id": "agt_missing"}], "no active agent"),
        ([{"type": "note", "body": "{{user.age}}"}], "placeholder"),
    ):
        refused = problem(bob.post("/macros", json={"name": "Bad", "actions": actions}), 422)
        assert expected in refused["detail"], refused
    problem(bob.post("/macros", json={"name": "Empty", "actions": []}), 422)
    problem(bob.post("/macros", json={"name": "Odd", "actions": [{"type": "explode"}]}), 422)
    # A shared macro cannot reply with a personal reply: others could not use it.
    problem(
        admin.post(
            "/macros",
            json={
                "name": "Shared",
                "shared": True,
                "actions": [{"type": "reply", "saved_reply_id": personal["id"]}],
            },
        ),
        422,
    )
    # A reply a macro uses cannot be deleted from under it.
    macro = ok(
        alice.post(
            "/macros",
            json={"name": "Uses", "actions": [{"type": "reply", "saved_reply_id": personal["id"]}]},
        ),
        201,
    )
    assert "Uses" in problem(alice.delete(f"/saved-replies/{personal['id']}"), 409)["detail"]
    ok(alice.delete(f"/macros/{macro['id']}"), 204)
    ok(alice.delete(f"/saved-replies/{personal['id']}"), 204)


def test_only_administrators_manage_shared_macros_and_owners_their_own(
    admin: httpx.Client, alice: httpx.Client, bob: httpx.Client
) -> None:
    tag = {"type": "add_tags", "tags": ["x"]}
    problem(alice.post("/macros", json={"name": "T", "actions": [tag], "shared": True}), 403)
    shared = ok(admin.post("/macros", json={"name": "Team", "actions": [tag], "shared": True}), 201)
    mine = ok(alice.post("/macros", json={"name": "Mine", "actions": [tag]}), 201)
    alice_sees = {m["id"]: m for m in ok(alice.get("/macros"))}
    assert alice_sees[shared["id"]]["can_edit"] is False and alice_sees[mine["id"]]["can_edit"]
    assert mine["id"] not in {m["id"] for m in ok(bob.get("/macros"))}
    assert mine["id"] not in {m["id"] for m in ok(admin.get("/macros"))}
    problem(alice.patch(f"/macros/{shared['id']}", json={"name": "Hijack"}), 403)
    problem(bob.patch(f"/macros/{mine['id']}", json={"name": "Hijack"}), 404)
    renamed = ok(alice.patch(f"/macros/{mine['id']}", json={"name": "Mine, renamed"}))
    assert renamed["name"] == "Mine, renamed" and renamed["actions"] == [tag]
    ok(admin.delete(f"/macros/{shared['id']}"), 204)
    problem(alice.get(f"/macros/{shared['id']}"), 404)


def test_the_openapi_document_lists_saved_replies_and_macros(server: LiveServer) -> None:
    doc = httpx.get(f"{server.base_url}/openapi.json").raise_for_status().json()
    paths = doc["paths"]
    assert set(paths["/api/v1/saved-replies"]) == {"get", "post"}
    assert set(paths["/api/v1/saved-replies/{reply_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/v1/macros"]) == {"get", "post"}
    assert set(paths["/api/v1/macros/{macro_id}"]) == {"get", "patch", "delete"}
    assert "get" in paths["/api/v1/conversations/{conversation_id}/saved-replies/{reply_id}/render"]
    assert "post" in paths["/api/v1/conversations/{conversation_id}/macros/{macro_id}"]
