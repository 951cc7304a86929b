"""Issuing and checking credentials. Secrets are shown once and stored only as hashes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.auth import repository
from findesk.auth.models import AccessToken, AgentToken, OAuthClient
from findesk.kit import ids
from findesk.kit.errors import NotFound, Unauthorized
from findesk.kit.secrets import hash_secret, new_secret, secret_matches
from findesk.kit.timeutil import as_utc, utcnow

ACCESS_TOKEN_PREFIX = "fat"  # noqa: S105 (a prefix, not a secret)
AGENT_TOKEN_PREFIX = "fpt"  # noqa: S105


class InvalidClient(Exception):
    """Unknown client, wrong secret or revoked client (RFC 6749 ``invalid_client``)."""


def create_client(session: Session, name: str) -> tuple[OAuthClient, str]:
    secret = new_secret("fcs")
    client = OAuthClient(id=ids.new_id(ids.CLIENT, 24), name=name, secret_hash=hash_secret(secret))
    session.add(client)
    session.flush()
    return client, secret


def list_clients(session: Session) -> Sequence[OAuthClient]:
    return repository.list_clients(session)


def revoke_client(session: Session, client_id: str) -> OAuthClient:
    """Revoke a client and every token it holds."""
    client = repository.get_client(session, client_id)
    if client is None:
        raise NotFound(f"No OAuth client with id {client_id!r}.")
    now = utcnow()
    if client.revoked_at is None:
        client.revoked_at = now
    repository.revoke_client_tokens(session, client.id, now)
    return client


def check_client(session: Session, client_id: str, client_secret: str) -> OAuthClient:
    client = repository.get_client(session, client_id)
    # Hash the secret even for an unknown client so that timing does not tell which ids exist.
    stored = client.secret_hash if client is not None else hash_secret("")
    if not secret_matches(client_secret, stored) or client is None or client.revoked_at:
        raise InvalidClient()
    return client


def issue_access_token(
    session: Session, client_id: str, client_secret: str, ttl_seconds: int
) -> tuple[str, int]:
    """Client credentials grant: a new bearer token and its lifetime in seconds."""
    client = check_client(session, client_id, client_secret)
    now = utcnow()
    repository.delete_expired_tokens(session, client.id, now - timedelta(days=1))
    token = new_secret(ACCESS_TOKEN_PREFIX)
    session.add(
        AccessToken(
            token_hash=hash_secret(token),
            client_id=client.id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return token, ttl_seconds


def authenticate_access_token(session: Session, token: str) -> OAuthClient:
    row = repository.get_access_token(session, hash_secret(token))
    if row is None:
        raise Unauthorized("The access token is not valid.")
    if row.revoked_at is not None or row.client.revoked_at is not None:
        raise Unauthorized("The access token was revoked.")
    if as_utc(row.expires_at) <= utcnow():
        raise Unauthorized("The access token has expired.")
    return row.client


def revoke_access_token(session: Session, token: str) -> None:
    """RFC 7009: revoking an unknown token is not an error."""
    row = repository.get_access_token(session, hash_secret(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def create_agent_token(session: Session, agent: Agent) -> str:
    token = new_secret(AGENT_TOKEN_PREFIX)
    session.add(AgentToken(token_hash=hash_secret(token), agent_id=agent.id))
    session.flush()
    return token


def authenticate_agent_token(session: Session, token: str) -> Agent:
    row = repository.get_agent_token(session, hash_secret(token))
    if row is None or row.revoked_at is not None or not row.agent.active:
        raise Unauthorized("The agent token is not valid.")
    return row.agent
