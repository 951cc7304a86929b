"""The optional request-signature check (spec 5): on when a signing secret is configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from support.server import LiveServer

SECRET = "test-hmac-key-from-fin-settings"


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('sig') / 'findesk.db'}"
    live = LiveServer(url, {"fin_signing_secret": SECRET}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def token(signed_server: LiveServer) -> str:
    return signed_server.fin_token()


def digest(timestamp: str, payload: bytes, secret: str = SECRET) -> bytes:
    return hmac.new(secret.encode(), timestamp.encode() + b":" + payload, hashlib.sha256).digest()


def post(
    server: LiveServer, token: str, body: bytes, headers: dict[str, str | bytes]
) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/fin/create_user",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )


def body() -> bytes:
    return json.dumps({"object_id": uuid.uuid4().hex, "name": "Signed"}).encode()


@pytest.mark.parametrize("encoding", ["hex", "HEX", "sha256=hex", "base64", "sha256=base64"])
def test_valid_signatures_in_every_accepted_encoding(signed_server, token, encoding) -> None:
    ts = str(int(time.time()))
    payload = body()
    raw = digest(ts, payload)
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
            "X-Fin-Signature": digest(ts, payload).hex(),
        },
    )
    user_id = created.json()["data"]["id"]
    canonical = f"user_id={user_id}".encode()
    response = httpx.get(
        f"{signed_server.base_url}/api/fin/user",
        params={"user_id": user_id},
        headers={
            "Authorization": f"Bearer {token}",
            "X-Fin-Request-Timestamp": ts,
            "X-Fin-Signature": digest(ts, canonical).hex(),
        },
    )
    assert response.status_code == 200, response.text


def test_bad_signatures_are_401_and_change_nothing(signed_server, token) -> None:
    ts = str(int(time.time()))
    payload = body()
    good = digest(ts, payload).hex()
    old = str(int(time.time()) - 3600)
    cases = {
        "missing": {},
        "wrong key": {
            "X-Fin-Request-Timestamp": ts,
            "X-Fin-Signature": digest(ts, payload, "other").hex(),
        },
        "tampered body": {
            "X-Fin-Request-Timestamp": ts,
            "X-Fin-Signature": digest(ts, payload + b" ").hex(),
        },
        "stale timestamp": {
            "X-Fin-Request-Timestamp": old,
            "X-Fin-Signature": digest(old, payload).hex(),
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
