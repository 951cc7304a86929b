"""Bad input of every kind gets a clear 4xx and changes nothing (spec 4.8)."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.fin import unique

from findesk.kit.db import Base
from findesk.kit.text import ATTRIBUTE_KEY_MAX, CONVERSATION_TITLE_MAX, NAME_MAX, TAG_MAX

# The Fin call ledger records every call, refused ones too: observability, not a change.
LEDGER_TABLES = {"fin_calls"}
HUGE = "x" * 100_000


def snapshot(server) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the ledger's, so that 'nothing changed' means exactly that."""
    with server.db.read_session() as session:
        return {
            table.name: sorted(map(tuple, session.execute(select(table)).all()), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name not in LEDGER_TABLES
        }


@pytest.fixture(scope="module")
def existing(server, fin: httpx.Client) -> dict[str, str]:
    user = fin.post("/user", json={"object_id": unique("u"), "name": "Jane"}).json()
    created = fin.post(
        "/conversation",
        json={
            "user_id": user["id"],
            "object_id": unique("c"),
            "initial_message": {
                "body": "<p>Hi</p>",
                "author": {"id": user["id"], "user_type": "end_user"},
                "object_id": unique("m"),
            },
        },
    ).json()
    return {
        "user": user["id"],
        "conversation": created["conversation"]["id"],
        "message": created["initial_message"]["id"],
    }


def message(existing: dict[str, str], **overrides: Any) -> dict[str, Any]:
    return {
        "conversation_id": existing["conversation"],
        "body": "<p>ok</p>",
        "author": {"id": existing["user"], "user_type": "end_user"},
        "visibility": "public",
        "object_id": unique("m"),
        **overrides,
    }


def conversation(existing: dict[str, str], **overrides: Any) -> dict[str, Any]:
    return {
        "user_id": existing["user"],
        "object_id": unique("c"),
        "initial_message": {
            "body": "<p>x</p>",
            "author": {"id": existing["user"], "user_type": "end_user"},
            "object_id": unique("m"),
        },
        **overrides,
    }


def cases(existing: dict[str, str]) -> list[tuple[str, str, str, Any, int]]:
    """(name, method, path, body (bytes: raw), expected status)."""
    c = existing["conversation"]
    return [
        ("malformed JSON", "POST", "/user", b'{"object_id": ', 400),
        ("malformed JSON posts-only", "POST", "/create_message", b"{not json", 400),
        ("NaN is not JSON", "POST", "/user", b'{"object_id": "x", "attributes": {"a": NaN}}', 400),
        (
            "huge integer",
            "POST",
            "/user",
            b'{"object_id": "x", "attributes": {"a": ' + b"9" * 5000 + b"}}",
            400,
        ),
        (
            "a number beyond a double",
            "PUT",
            "/user",
            b'{"user_id": "' + existing["user"].encode() + b'", "attributes": {"a": 1e400}}',
            422,
        ),
        (
            "nesting too deep to parse",
            "POST",
            "/get_conversation",
            b"[" * 100_000 + b"]" * 100_000,
            400,
        ),
        (
            "deep nesting",
            "PUT",
            "/conversation",
            b'{"conversation_id": "'
            + c.encode()
            + b'", "attributes": {"a": '
            + b"[" * 100
            + b"]" * 100
            + b"}}",
            422,
        ),
        ("not an object", "POST", "/user", [1, 2], 422),
        ("NUL in a string", "POST", "/user", {"object_id": unique("u"), "name": "a\x00b"}, 422),
        ("lone surrogate", "POST", "/user", b'{"object_id": "x1", "name": "\\ud800"}', 422),
        (
            "control character in a name",
            "POST",
            "/user",
            {"object_id": unique("u"), "name": "Ada \x1b[2J"},
            422,
        ),
        ("100,000-character name", "POST", "/user", {"object_id": unique("u"), "name": HUGE}, 422),
        (
            "control character in an email",
            "POST",
            "/user",
            {"object_id": unique("u"), "email": "ada\x07@example.com"},
            422,
        ),
        (
            "control character in an attribute's name",
            "PUT",
            "/user",
            {"user_id": existing["user"], "attributes": {"plan\x01": "pro"}},
            422,
        ),
        (
            "100,000-character attribute name",
            "PUT",
            "/conversation",
            {"conversation_id": c, "attributes": {HUGE: 1}},
            422,
        ),
        (
            "control character in a tag",
            "PUT",
            "/conversation",
            {"conversation_id": c, "tags": ["vip", "\x1b[31m"]},
            422,
        ),
        (
            "100,000-character tag",
            "PUT",
            "/conversation",
            {"conversation_id": c, "tags": [HUGE]},
            422,
        ),
        (
            "control character in a title",
            "PUT",
            "/conversation",
            {"conversation_id": c, "title": "Order\x08"},
            422,
        ),
        (
            "control character in a new conversation's title",
            "POST",
            "/conversation",
            conversation(existing, title="Order \x1b"),
            422,
        ),
        ("missing object_id", "POST", "/user", {"name": "No id"}, 422),
        ("empty object_id", "POST", "/user", {"object_id": ""}, 422),
        ("wrong type name", "POST", "/user", {"object_id": unique("u"), "name": 123}, 422),
        ("bad email", "POST", "/user", {"object_id": unique("u"), "email": "not-an-email"}, 422),
        (
            "javascript photo",
            "POST",
            "/user",
            {"object_id": unique("u"), "photo_url": "javascript:alert(1)"},
            422,
        ),
        (
            "attributes not object",
            "PUT",
            "/user",
            {"user_id": existing["user"], "attributes": "x"},
            422,
        ),
        ("unknown user", "PUT", "/user", {"user_id": "usr_nope", "attributes": {"a": 1}}, 404),
        (
            "unknown status",
            "PUT",
            "/conversation",
            {"conversation_id": c, "status": "pending"},
            422,
        ),
        ("tags not a list", "PUT", "/conversation", {"conversation_id": c, "tags": "billing"}, 422),
        ("tag not a string", "PUT", "/conversation", {"conversation_id": c, "tags": [1]}, 422),
        (
            "bad timestamp",
            "PUT",
            "/conversation",
            {"conversation_id": c, "last_user_read_at": "yesterday"},
            422,
        ),
        ("missing conversation_id", "PUT", "/conversation", {"title": "x"}, 422),
        (
            "unknown conversation",
            "PUT",
            "/conversation",
            {"conversation_id": "conv_nope", "title": "x"},
            404,
        ),
        (
            "unknown assignee",
            "PUT",
            "/conversation",
            {"conversation_id": c, "assignee_id": "agt_nope"},
            404,
        ),
        (
            "missing initial_message",
            "POST",
            "/conversation",
            {"user_id": existing["user"], "object_id": unique("c")},
            422,
        ),
        (
            "unknown user for conversation",
            "POST",
            "/conversation",
            conversation(existing, user_id="usr_nope"),
            404,
        ),
        (
            "initial message by someone else",
            "POST",
            "/conversation",
            conversation(
                existing,
                initial_message={
                    "body": "<p>x</p>",
                    "author": {"id": "usr_other", "user_type": "end_user"},
                    "object_id": unique("m"),
                },
            ),
            422,
        ),
        ("unknown visibility", "POST", "/messages", message(existing, visibility="secret"), 422),
        ("unknown message_type", "POST", "/messages", message(existing, message_type="note"), 422),
        (
            "unknown user_type",
            "POST",
            "/messages",
            message(existing, author={"id": existing["user"], "user_type": "bot"}),
            422,
        ),
        ("author not an object", "POST", "/messages", message(existing, author="me"), 422),
        (
            "missing author",
            "POST",
            "/messages",
            {k: v for k, v in message(existing).items() if k != "author"},
            422,
        ),
        (
            "missing object_id",
            "POST",
            "/messages",
            {k: v for k, v in message(existing).items() if k != "object_id"},
            422,
        ),
        ("empty message", "POST", "/messages", message(existing, body="", attachments=[]), 422),
        (
            "script-only message",
            "POST",
            "/messages",
            message(existing, body="<script>alert(1)</script>"),
            422,
        ),
        (
            "javascript-only link",
            "POST",
            "/messages",
            message(existing, body='<a href="javascript:alert(1)"></a>'),
            422,
        ),
        (
            "javascript attachment",
            "POST",
            "/messages",
            message(existing, attachments=[{"url": "javascript:alert(1)"}]),
            422,
        ),
        (
            "attachments not a list",
            "POST",
            "/messages",
            message(existing, attachments={"url": "https://x.y/z"}),
            422,
        ),
        ("body wrong type", "POST", "/messages", message(existing, body=["<p>x</p>"]), 422),
        (
            "unknown conversation for message",
            "POST",
            "/messages",
            message(existing, conversation_id="conv_nope"),
            404,
        ),
        (
            "5 MB body",
            "POST",
            "/messages",
            message(existing, body="<p>" + "x" * 5_000_000 + "</p>"),
            413,
        ),
        (
            "5 MB body posts-only",
            "POST",
            "/create_user",
            {"object_id": unique("u"), "name": "x" * 5_000_000},
            413,
        ),
        ("missing query parameter", "GET", "/messages", None, 422),
        ("posts-only missing id", "POST", "/get_conversation", {}, 422),
    ]


def test_every_bad_request_gets_a_clear_4xx_and_changes_nothing(
    server, fin: httpx.Client, existing
) -> None:
    before = snapshot(server)
    for name, method, path, body, expected in cases(existing):
        content = (
            body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        )
        response = fin.request(
            method, path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == expected, (
            f"{name}: {response.status_code} {response.text[:300]}"
        )
        problem = response.json()
        if path.lstrip("/") in {"create_message", "create_user", "get_conversation"}:
            assert problem["data"] is None
            problem = problem["error"]
        else:
            assert response.headers["content-type"].startswith("application/problem+json"), name
        assert problem["status"] == expected and problem["detail"], name
        assert problem["code"], name
    assert snapshot(server) == before


def test_chunked_body_over_the_limit_is_refused(server, fin: httpx.Client, existing) -> None:
    before = snapshot(server)

    def chunks():
        payload = json.dumps(message(existing, body="<p>" + "y" * 3_000_000 + "</p>")).encode()
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    response = fin.post("/messages", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert snapshot(server) == before


def test_text_at_the_limits_is_stored_whole(fin: httpx.Client, existing) -> None:
    """The limits refuse only what is absurd: a value at each limit goes through untouched, and
    a line break in a one-line field is a space."""
    name, key = "N" * NAME_MAX, "k" * ATTRIBUTE_KEY_MAX
    user = fin.post("/user", json={"object_id": unique("u"), "name": name, "attributes": {key: 1}})
    assert user.status_code == 201, user.text[:300]
    assert (user.json()["name"], user.json()["attributes"]) == (name, {key: 1})

    c = existing["conversation"]
    title, tag = "é" * CONVERSATION_TITLE_MAX, "t" * TAG_MAX
    updated = fin.put("/conversation", json={"conversation_id": c, "title": title, "tags": [tag]})
    assert updated.status_code == 200, updated.text[:300]
    assert (updated.json()["title"], updated.json()["tags"]) == (title, [tag])
    updated = fin.put("/conversation", json={"conversation_id": c, "title": "Two\r\nlines"})
    assert updated.json()["title"] == "Two  lines"


def test_a_client_gone_before_its_body_arrived_is_no_crash(
    server, caplog: pytest.LogCaptureFixture
) -> None:
    """A load generator stopping (or a dropped connection) mid-body: nothing to answer, and
    nothing logged as an unhandled exception."""
    token = server.fin_token()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(
                b"POST /api/fin/messages HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                b'{"conversation_id": '
            )
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(10)
            while sock.recv(4096):  # until the server closes it
                pass
    fin = httpx.get(f"{server.base_url}/healthz")
    assert fin.status_code == 200
    crashes = [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    assert crashes == [], crashes[0].exc_info if crashes else None
