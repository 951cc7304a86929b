"""The token endpoint (client credentials) and what the Fin API does with tokens (spec 5)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from findesk.auth.models import AccessToken
from findesk.auth.service import revoke_client
from findesk.kit.secrets import hash_secret
from findesk.kit.timeutil import utcnow


def token_url(server) -> str:
    return f"{server.base_url}/oauth/token"


def fin_get_agents(server, token: str | None, scheme: str = "Bearer") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return httpx.get(f"{server.base_url}/api/fin/agents", headers=headers)


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("style", ["form+basic", "form+body", "json+basic", "json+body"])
def test_token_issued_for_every_documented_style(server, style: str) -> None:
    client_id, secret = server.new_oauth_client()
    body_kind, creds = style.split("+")
    params = {"grant_type": "client_credentials"}
    auth = None
    if creds == "body":
        params |= {"client_id": client_id, "client_secret": secret}
    else:
        auth = (client_id, secret)
    kwargs = {"json": params} if body_kind == "json" else {"data": params}
    response = httpx.post(token_url(server), auth=auth, **kwargs)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert response.headers["cache-control"] == "no-store"
    assert fin_get_agents(server, body["access_token"]).status_code == 200


def test_token_errors_follow_rfc_6749(server) -> None:
    client_id, secret = server.new_oauth_client()
    url = token_url(server)
    wrong = httpx.post(url, data={"grant_type": "client_credentials"}, auth=(client_id, "nope"))
    assert_oauth_error(wrong, 401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic")
    unknown = httpx.post(
        url,
        json={"grant_type": "client_credentials", "client_id": "fcl_x", "client_secret": secret},
    )
    assert_oauth_error(unknown, 401, "invalid_client")
    no_creds = httpx.post(url, data={"grant_type": "client_credentials"})
    assert_oauth_error(no_creds, 401, "invalid_client")
    no_grant = httpx.post(url, data={}, auth=(client_id, secret))
    assert_oauth_error(no_grant, 400, "invalid_request")
    password = httpx.post(url, data={"grant_type": "password"}, auth=(client_id, secret))
    assert_oauth_error(password, 400, "unsupported_grant_type")
    both = httpx.post(
        url,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        auth=(client_id, secret),
    )
    assert_oauth_error(both, 400, "invalid_request")
    bad_json = httpx.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert_oauth_error(bad_json, 400, "invalid_request")
    not_object = httpx.post(url, json=["grant_type"], auth=(client_id, secret))
    assert_oauth_error(not_object, 400, "invalid_request")
    bad_basic = httpx.post(
        url, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!!"}
    )
    assert_oauth_error(bad_basic, 401, "invalid_client")


def test_fin_api_refuses_missing_bad_expired_and_revoked_tokens(server) -> None:
    for response in (
        fin_get_agents(server, None),
        fin_get_agents(server, "fat_not-a-real-token"),
        fin_get_agents(server, "x", scheme="Token"),
        fin_get_agents(server, server.fin_token(), scheme="Basic"),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"].startswith("application/problem+json")

    expired = server.fin_token()
    with server.db.transaction() as session:
        row = session.get(AccessToken, hash_secret(expired))
        row.expires_at = utcnow() - timedelta(seconds=1)
    response = fin_get_agents(server, expired)
    assert response.status_code == 401 and "expired" in response.json()["detail"]

    # RFC 7009 revocation by the client itself.
    client_id, secret = server.new_oauth_client()
    token = httpx.post(
        token_url(server), data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()["access_token"]
    assert fin_get_agents(server, token).status_code == 200
    revoked = httpx.post(
        f"{server.base_url}/oauth/revoke", data={"token": token}, auth=(client_id, secret)
    )
    assert revoked.status_code == 200
    assert fin_get_agents(server, token).status_code == 401


def test_revoking_a_client_kills_its_tokens_and_its_grant(server) -> None:
    client_id, secret = server.new_oauth_client()
    url = token_url(server)
    token = httpx.post(
        url, data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()["access_token"]
    with server.db.transaction() as session:
        revoke_client(session, client_id)
    assert fin_get_agents(server, token).status_code == 401
    again = httpx.post(url, data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert_oauth_error(again, 401, "invalid_client")


def test_tokens_are_stored_only_as_hashes(server) -> None:
    token = server.fin_token()
    with server.db.read_session() as session:
        hashes = session.scalars(select(AccessToken.token_hash)).all()
    assert token not in hashes
    assert hashlib.sha256(token.encode()).hexdigest() in hashes


def test_tokens_are_random_and_unique(server) -> None:
    tokens = {server.fin_token() for _ in range(5)}
    assert len(tokens) == 5
    assert all(len(base64.urlsafe_b64decode(t.split("_", 1)[1] + "==")) >= 32 for t in tokens)


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
def test_a_body_nested_too_deep_to_parse_is_a_400_not_a_crash(server, path: str) -> None:
    nested = b"[" * 1000 + b"]" * 1000
    for body in (nested, b"[" * 100_000 + b"]" * 100_000, b'{"grant_type": ' + nested + b"}"):
        response = httpx.post(
            f"{server.base_url}{path}", content=body, headers={"content-type": "application/json"}
        )
        assert_oauth_error(response, 400, "invalid_request")


def from_address(address: str) -> httpx.Client:
    """Requests from another loopback address: another machine, as the server sees it."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_failed_token_requests_are_throttled_per_client_and_address(server) -> None:
    client_id, secret = server.new_oauth_client()
    url, grant = token_url(server), {"grant_type": "client_credentials"}
    with from_address("127.0.0.20") as attacker:
        for _ in range(6):
            assert_oauth_error(
                attacker.post(url, data=grant, auth=(client_id, "guess")), 401, "invalid_client"
            )
        refused = attacker.post(url, data=grant, auth=(client_id, secret))  # even the right one
        assert_oauth_error(refused, 429, "too_many_attempts")
        assert int(refused.headers["retry-after"]) >= 1
        revoke = attacker.post(
            f"{server.base_url}/oauth/revoke", data={"token": "x"}, auth=(client_id, secret)
        )
        assert_oauth_error(revoke, 429, "too_many_attempts")
    with from_address("127.0.0.21") as fin:  # Fin, elsewhere, still gets its token
        issued = fin.post(url, data=grant, auth=(client_id, secret))
        assert issued.status_code == 200, issued.text
        assert fin_get_agents(server, issued.json()["access_token"]).status_code == 200


def test_a_client_keeps_a_bounded_number_of_live_tokens(server) -> None:
    client_id, secret = server.new_oauth_client()
    limit = server.settings.oauth_max_live_tokens
    tokens = [
        httpx.post(
            token_url(server), data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        ).json()["access_token"]
        for _ in range(limit + 5)
    ]
    with server.db.read_session() as session:
        live = session.scalars(
            select(AccessToken.token_hash).where(
                AccessToken.client_id == client_id, AccessToken.revoked_at.is_(None)
            )
        ).all()
    assert len(live) == limit
    assert set(live) == {hash_secret(t) for t in tokens[-limit:]}  # the oldest went first
    assert fin_get_agents(server, tokens[0]).status_code == 401
    assert fin_get_agents(server, tokens[-1]).status_code == 200
