"""The optional request-signature check (spec 5): on when a signing secret is configured.

Signatures are made with ``findesk.fin_api.signing``, the one definition of the signed string
that findesk's own clients use too."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import func, select
from support.fin import World
from support.server import LiveServer, database_url

from findesk.conversations.models import Conversation
from findesk.fin_api import replay, signing
from findesk.fin_api.client import FinApiClient
from findesk.fin_api.models import SeenRequestSignature
from findesk.kit.db import Database
from findesk.kit.timeutil import utcnow
from findesk.migrations import upgrade
from findesk.users.models import EndUser

SECRET = "test-hmac-key-from-fin-settings"
CREATE_USER = "/api/fin/create_user"
ALREADY_USED = "This signed request was already used."
T = TypeVar("T")


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('sig') / 'findesk.db'}"
    live = LiveServer(url, {"fin_signing_secret": SECRET}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def token(signed_server: LiveServer) -> str:
    return signed_server.fin_token()


def digest(
    timestamp: str,
    method: str,
    path: str,
    payload: bytes = b"",
    query: str = "",
    secret: str = SECRET,
) -> bytes:
    """The raw digest in the default (``bound``) scheme."""
    message = signing.signed_string("bound", timestamp, method, path, query, payload)
    return signing.digest(secret, message)


def post(
    server: LiveServer, token: str, body: bytes, headers: dict[str, str | bytes]
) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}{CREATE_USER}",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )


def body() -> bytes:
    return json.dumps({"object_id": uuid.uuid4().hex, "name": "Signed"}).encode()


@pytest.mark.parametrize("encoding", ["hex", "HEX", "sha256=hex", "base64", "sha256=base64"])
def test_valid_signatures_in_every_accepted_encoding(signed_server, token, encoding) -> None:
    ts = str(int(time.time()))
    payload = body()
    raw = digest(ts, "POST", CREATE_USER, payload)
    value = raw.hex() if "hex" in encoding.lower() else base64.b64encode(raw).decode()
    if encoding == "HEX":
        value = value.upper()
    if encoding.startswith("sha256="):
        value = "sha256=" + value
    response = post(
        signed_server, token, payload, {"X-Fin-Request-Timestamp": ts, "X-Fin-Signature": value}
    )
    assert response.status_code == 201, response.text


def test_get_requests_sign_the_sorted_query(signed_server, token) -> None:
    created = post(
        signed_server,
        token,
        payload := body(),
        {
            "X-Fin-Request-Timestamp": (ts := str(int(time.time()))),
            "X-Fin-Signature": digest(ts, "POST", CREATE_USER, payload).hex(),
        },
    )
    user_id = created.json()["data"]["id"]
    response = httpx.get(
        f"{signed_server.base_url}/api/fin/user",
        params={"user_id": user_id},
        headers={
            "Authorization": f"Bearer {token}",
            "X-Fin-Request-Timestamp": ts,
            "X-Fin-Signature": digest(ts, "GET", "/api/fin/user", query=f"user_id={user_id}").hex(),
        },
    )
    assert response.status_code == 200, response.text


def test_bad_signatures_are_401_and_change_nothing(signed_server, token) -> None:
    ts = str(int(time.time()))
    payload = body()
    good = digest(ts, "POST", CREATE_USER, payload).hex()
    old = str(int(time.time()) - 3600)
    cases = {
        "missing": {},
        "wrong key": {
            "X-Fin-Request-Timestamp": ts,
            "X-Fin-Signature": digest(ts, "POST", CREATE_USER, payload, secret="other").hex(),
        },
        "tampered body": {
            "X-Fin-Request-Timestamp": ts,
            "X-Fin-Signature": digest(ts, "POST", CREATE_USER, payload + b" ").hex(),
        },
        "stale timestamp": {
            "X-Fin-Request-Timestamp": old,
            "X-Fin-Signature": digest(old, "POST", CREATE_USER, payload).hex(),
        },
        "timestamp not a number": {"X-Fin-Request-Timestamp": "yesterday", "X-Fin-Signature": good},
        "garbage": {"X-Fin-Request-Timestamp": ts, "X-Fin-Signature": "\u00fcn\u00efcode".encode()},
    }
    for name, headers in cases.items():
        response = post(signed_server, token, payload, headers)
        assert response.status_code == 401, name
        assert response.json()["error"]["status"] == 401
    object_id = json.loads(payload)["object_id"]
    ok = post(
        signed_server, token, payload, {"X-Fin-Request-Timestamp": ts, "X-Fin-Signature": good}
    )
    assert ok.status_code == 201  # nothing was created by the refused attempts
    assert ok.json()["data"]["id"].startswith("usr_") and object_id


# --- the signature binds method, path and query; each is accepted once (issue 11.5) ---------


def signed_call(
    server: LiveServer,
    token: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    content: bytes = b"",
    headers: dict[str, str],
) -> httpx.Response:
    """Send a call with signature headers made for some (maybe other) call."""
    return httpx.request(
        method,
        f"{server.base_url}{path}",
        params=params,
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )


def signed_world(server: LiveServer, scheme: signing.SignatureScheme = "bound") -> World:
    """Fin calling ``server``, each call signed afresh."""
    http = httpx.Client(
        base_url=f"{server.base_url}/api/fin",
        headers={"Authorization": f"Bearer {server.fin_token()}"},
        auth=signing.FinRequestSigner(SECRET, scheme),
        timeout=30,
    )
    server._clients.append(http)
    return World(FinApiClient(http), server.fin_agent_id)


def stored(server: LiveServer, model: type[T], row_id: str) -> T:
    """A row as the database holds it."""
    with server.db.read_session() as session:
        row = session.get(model, row_id)
        assert row is not None
        return row


def test_a_get_signature_does_not_pass_with_another_query(signed_server, token) -> None:
    world = signed_world(signed_server)
    user_a, user_b = world.user(name="A"), world.user(name="B")
    headers = signing.signature_headers(
        SECRET, "GET", f"{signed_server.base_url}/api/fin/user?user_id={user_a['id']}"
    )
    other = signed_call(
        signed_server,
        token,
        "GET",
        "/api/fin/user",
        params={"user_id": user_b["id"]},
        headers=headers,
    )
    assert other.status_code == 401, other.text
    assert other.json()["detail"] == "The request signature does not match."
    same = signed_call(
        signed_server,
        token,
        "GET",
        "/api/fin/user",
        params={"user_id": user_a["id"]},
        headers=headers,
    )
    assert same.status_code == 200, same.text
    assert same.json()["id"] == user_a["id"]


def test_a_body_signature_does_not_pass_on_another_path_or_method(signed_server, token) -> None:
    world = signed_world(signed_server)
    user = world.user()
    payload = json.dumps({"user_id": user["id"], "attributes": {"plan": "gold"}}).encode()
    headers = signing.signature_headers(
        SECRET, "PUT", f"{signed_server.base_url}/api/fin/user", payload
    )
    for method, path in [
        ("POST", "/api/fin/update_user"),  # same body, other path (the posts-only variant)
        ("POST", "/api/fin/user"),  # same path, other method
        ("PUT", "/api/fin/conversation"),  # same method, other path
    ]:
        refused = signed_call(signed_server, token, method, path, content=payload, headers=headers)
        assert refused.status_code == 401, (method, path, refused.text)
    assert stored(signed_server, EndUser, user["id"]).attributes == {}
    done = signed_call(
        signed_server, token, "PUT", "/api/fin/user", content=payload, headers=headers
    )
    assert done.status_code == 200, done.text
    assert stored(signed_server, EndUser, user["id"]).attributes == {"plan": "gold"}


def test_a_replayed_resolve_does_not_undo_a_later_reopen(signed_server, token) -> None:
    world = signed_world(signed_server)
    conversation, _ = world.conversation()
    resolve = json.dumps({"conversation_id": conversation["id"], "status": "resolved"}).encode()
    headers = signing.signature_headers(
        SECRET, "PUT", f"{signed_server.base_url}/api/fin/conversation", resolve
    )
    first = signed_call(
        signed_server, token, "PUT", "/api/fin/conversation", content=resolve, headers=headers
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "resolved"
    assert world.update(conversation["id"], status="open")["status"] == "open"

    replayed = signed_call(
        signed_server, token, "PUT", "/api/fin/conversation", content=resolve, headers=headers
    )
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["detail"] == ALREADY_USED
    assert replayed.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored(signed_server, Conversation, conversation["id"]).status == "open"
    # The same digest in another encoding is the same signature.
    raw = signing.digest(
        SECRET,
        signing.signed_string(
            "bound", headers[signing.TIMESTAMP_HEADER], "PUT", "/api/fin/conversation", "", resolve
        ),
    )
    reencoded = {**headers, signing.SIGNATURE_HEADER: "sha256=" + base64.b64encode(raw).decode()}
    again = signed_call(
        signed_server, token, "PUT", "/api/fin/conversation", content=resolve, headers=reencoded
    )
    assert again.status_code == 401 and again.json()["detail"] == ALREADY_USED
    assert stored(signed_server, Conversation, conversation["id"]).status == "open"


@pytest.fixture(scope="module")
def twin_server(signed_server: LiveServer) -> Iterator[LiveServer]:
    """A second findesk on the signed server's database: another process of the same site."""
    live = LiveServer(signed_server.database_url, {"fin_signing_secret": SECRET}).start()
    yield live
    live.stop()


def test_a_replay_is_refused_by_another_server_on_the_same_database(
    signed_server, twin_server, token
) -> None:
    payload = body()
    headers = signing.signature_headers(
        SECRET, "POST", f"{signed_server.base_url}{CREATE_USER}", payload
    )
    assert post(signed_server, token, payload, headers).status_code == 201
    replayed = post(twin_server, token, payload, headers)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"]["detail"] == ALREADY_USED


def test_concurrent_copies_of_one_signed_call_pass_once(signed_server, twin_server, token) -> None:
    payload = body()
    headers = signing.signature_headers(
        SECRET, "POST", f"{signed_server.base_url}{CREATE_USER}", payload
    )
    servers = [signed_server, twin_server] * 4
    with ThreadPoolExecutor(len(servers)) as pool:
        statuses = list(
            pool.map(lambda live: post(live, token, payload, headers).status_code, servers)
        )
    assert sorted(statuses) == [201] + [401] * 7, statuses


def test_a_refused_signature_is_not_spent(signed_server, token) -> None:
    payload = body()
    headers = signing.signature_headers(
        SECRET, "POST", f"{signed_server.base_url}{CREATE_USER}", payload
    )
    assert post(signed_server, token, payload + b" ", headers).status_code == 401
    assert post(signed_server, token, payload, headers).status_code == 201


def seen_rows(db: Database, *, expired: bool) -> int:
    column = SeenRequestSignature.expires_at
    condition = column < utcnow() if expired else column >= utcnow()
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).where(condition)) or 0)


def add_seen(db: Database, count: int, expires_in: timedelta) -> None:
    with db.transaction() as session:
        for _ in range(count):
            session.add(
                SeenRequestSignature(
                    digest_hash=uuid.uuid4().hex * 2, expires_at=utcnow() + expires_in
                )
            )


def test_expired_signatures_are_purged_a_bounded_batch_at_a_time(signed_server, token) -> None:
    db = signed_server.db
    add_seen(db, replay.PURGE_BATCH + 5, timedelta(seconds=-1))
    live_before = seen_rows(db, expired=False)
    world = signed_world(signed_server)
    world.user()  # one signed call: records itself, purges a batch
    assert seen_rows(db, expired=True) == 5
    assert seen_rows(db, expired=False) == live_before + 1  # unexpired rows are kept
    world.user()
    assert seen_rows(db, expired=True) == 0
    assert seen_rows(db, expired=False) == live_before + 2


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_seen_signatures_table_refuses_a_second_use_and_purges(
    backend: str, request: pytest.FixtureRequest, tmp_path
) -> None:
    url = database_url(backend, request, tmp_path)
    upgrade(url)
    db = Database(url)
    try:
        add_seen(db, 3, timedelta(minutes=-5))
        later = utcnow() + timedelta(minutes=5)
        assert replay.remember(db, b"digest-1", later)
        assert not replay.remember(db, b"digest-1", later)
        assert replay.remember(db, b"digest-2", later)
        assert seen_rows(db, expired=True) == 0
        assert seen_rows(db, expired=False) == 2
    finally:
        db.dispose()


# --- the `body` scheme: spec 5's form, still available ---------------------------------------


@pytest.fixture(scope="module")
def body_scheme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('sig-body') / 'findesk.db'}"
    settings = {"fin_signing_secret": SECRET, "fin_signature_scheme": "body"}
    live = LiveServer(url, settings).start()
    yield live
    live.stop()


def test_the_body_scheme_signs_timestamp_and_body_or_sorted_query(body_scheme_server) -> None:
    live = body_scheme_server
    token = live.fin_token()
    ts = str(int(time.time()))
    payload = body()
    old_form = signing.digest(SECRET, ts.encode() + b":" + payload).hex()
    headers = {"X-Fin-Request-Timestamp": ts, "X-Fin-Signature": old_form}
    created = post(live, token, payload, headers)
    assert created.status_code == 201, created.text
    user_id = created.json()["data"]["id"]
    # A bound signature is not what this server checks.
    bound = signing.signature_headers(SECRET, "POST", f"{live.base_url}{CREATE_USER}", body())
    assert post(live, token, body(), bound).status_code == 401

    get_form = signing.digest(SECRET, f"{ts}:a=2&user_id={user_id}".encode()).hex()
    got = signed_call(
        live,
        token,
        "GET",
        "/api/fin/user",
        params={"user_id": user_id, "a": "2"},
        headers={"X-Fin-Request-Timestamp": ts, "X-Fin-Signature": get_form},
    )
    assert got.status_code == 200, got.text
    # Every call that FinRequestSigner makes in this scheme passes too.
    world = signed_world(live, "body")
    assert world.api.get_user(world.user()["id"]).status == 200
    # Replays are refused in this scheme as well.
    replayed = post(live, token, payload, headers)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["detail"] == ALREADY_USED


@pytest.mark.parametrize("variant", ["rest", "posts"])
def test_the_same_signed_read_twice_in_one_second_passes(signed_server, token, variant) -> None:
    """A replayed read changes nothing, and Fin may read one thing twice within a second (the
    same call then carries the same signature): reads are not held to accept-once."""
    user_id = signed_world(signed_server).user(name="Read twice")["id"]
    ts = str(int(time.time()))
    if variant == "rest":
        path, query, payload = "/api/fin/user", f"user_id={user_id}", b""
    else:
        path, query, payload = "/api/fin/get_user", "", json.dumps({"user_id": user_id}).encode()
    method = "GET" if variant == "rest" else "POST"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-Fin-Request-Timestamp": ts,
        "X-Fin-Signature": digest(ts, method, path, payload, query).hex(),
    }
    url = f"{signed_server.base_url}{path}" + (f"?{query}" if query else "")
    for _ in range(2):
        response = httpx.request(method, url, content=payload or None, headers=headers)
        assert response.status_code == 200, response.text
