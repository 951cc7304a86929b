"""The token is checked in the call's own transaction, after FastAPI has read the query and the
body: a call it refuses sooner (bad JSON, a missing field) must still be answered 401 when its
token is not valid, and only a valid token earns the 400 or 422 that says what is wrong."""

from __future__ import annotations

import httpx
import pytest
from support.server import LiveServer

BAD_CALLS = [
    ("GET", "/api/fin/conversation", {}, None),  # conversation_id missing
    ("GET", "/api/fin/messages", {"conversation_id": ""}, None),  # too short
    ("POST", "/api/fin/messages", {}, b"{}"),  # every field missing
    ("POST", "/api/fin/get_conversation", {}, b"{not json"),
    ("PUT", "/api/fin/conversation", {}, b'{"conversation_id": 5}'),
]


@pytest.mark.parametrize(("method", "path", "params", "body"), BAD_CALLS)
def test_a_bad_call_with_a_bad_token_is_answered_401(
    server: LiveServer, method: str, path: str, params: dict[str, str], body: bytes | None
) -> None:
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for token in ("fat_not-a-real-token", None):
            sent = dict(headers, Authorization=f"Bearer {token}") if token else headers
            refused = client.request(method, path, params=params, content=body, headers=sent)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"].startswith("Bearer")
        sent = dict(headers, Authorization=f"Bearer {server.fin_token()}")
        answered = client.request(method, path, params=params, content=body, headers=sent)
    assert answered.status_code in (400, 422), answered.text
