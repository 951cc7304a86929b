"""Issuing and checking credentials. Secrets are shown once and stored only as hashes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.audit import service as audit
from findesk.audit.service import AuditActor
from findesk.auth import repository
from findesk.auth.models import AccessToken, AgentToken, OAuthClient
from findesk.kit import ids
from findesk.kit.errors import Invalid, NotFound, Unauthorized
from findesk.kit.secrets import hash_secret, new_secret, secret_matches
from findesk.kit.text import NAME_MAX, TOKEN_LABEL_MAX, clean_optional, clean_text, invalid
from findesk.kit.timeutil import as_utc, utcnow

ACCESS_TOKEN_PREFIX = "fat"  # noqa: S105 (a prefix, not a secret)
AGENT_TOKEN_PREFIX = "fpt"  # noqa: S105
# A personal token's last use is kept to this precision: one write per token per hour at most,
# not one per call.
TOKEN_USE_RESOLUTION = timedelta(hours=1)


class InvalidClient(Exception):
    """Unknown client, wrong secret or revoked client (RFC 6749 ``invalid_client``)."""


def create_client(
    session: Session, name: str, *, by: AuditActor | None = None
) -> tuple[OAuthClient, str]:
    """A new client and its secret (shown once); ``by`` is who, for the audit log."""
    name = clean_text(name, field="name", max_length=NAME_MAX, label="The client's name")
    if not name:
        raise invalid("A client needs a name.", field="name")
    secret = new_secret("fcs")
    client = OAuthClient(id=ids.new_id(ids.CLIENT, 24), name=name, secret_hash=hash_secret(secret))
    session.add(client)
    session.flush()
    audit.record(session, by, "oauth_client.created", "oauth_client", client.id, {"name": name})
    return client, secret


def list_clients(session: Session) -> Sequence[OAuthClient]:
    return repository.list_clients(session)


def revoke_client(session: Session, client_id: str, *, by: AuditActor | None = None) -> OAuthClient:
    """Revoke a client and every token it holds."""
    client = repository.get_client(session, client_id)
    if client is None:
        raise NotFound(f"No OAuth client with id {client_id!r}.")
    now = utcnow()
    if client.revoked_at is None:
        client.revoked_at = now
        detail = {"name": client.name}
        audit.record(session, by, "oauth_client.revoked", "oauth_client", client.id, detail)
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
    session: Session,
    client_id: str,
    client_secret: str,
    ttl_seconds: int,
    *,
    max_live: int | None = None,
) -> tuple[str, int]:
    """Client credentials grant: a new bearer token and its lifetime in seconds. The client
    keeps at most ``max_live`` live tokens: the oldest beyond are revoked (a client that asks
    for a token on every call cannot fill the table)."""
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
    if max_live is not None:
        session.flush()
        repository.revoke_live_tokens_beyond(session, client.id, max_live, now)
    return token, ttl_seconds


def authenticate_access_token(connection: Connection, token: str) -> str:
    """The id of the OAuth client the bearer token was issued to; Unauthorized unless it is
    live."""
    row = repository.access_token_state(connection, hash_secret(token))
    if row is None:
        raise Unauthorized("The access token is not valid.")
    client_id, expires_at, revoked_at, client_revoked_at = row
    if revoked_at is not None or client_revoked_at is not None:
        raise Unauthorized("The access token was revoked.")
    if as_utc(expires_at) <= utcnow():
        raise Unauthorized("The access token has expired.")
    return client_id


def revoke_access_token(session: Session, token: str) -> None:
    """RFC 7009: revoking an unknown token is not an error."""
    row = repository.get_access_token(session, hash_secret(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def issue_agent_token(
    session: Session, agent: Agent, *, label: str | None = None, by: AuditActor | None = None
) -> tuple[AgentToken, str]:
    """A new personal token for the agent API: its row (public id, label) and its secret, which
    is shown this once only; ``by`` is who, for the audit log."""
    if not agent.active:
        raise Invalid(f"{agent.email} is deactivated: reactivate them before issuing a token.")
    label = clean_optional(
        label, field="label", max_length=TOKEN_LABEL_MAX, label="The token's label"
    )
    token = new_secret(AGENT_TOKEN_PREFIX)
    row = AgentToken(token_hash=hash_secret(token), agent_id=agent.id, label=label)
    session.add(row)
    session.flush()
    detail = {"agent_id": agent.id, "agent_email": agent.email}
    if label is not None:
        detail["label"] = label
    audit.record(session, by, "agent_token.issued", "agent_token", row.id, detail)
    return row, token


def create_agent_token(session: Session, agent: Agent, *, by: AuditActor | None = None) -> str:
    """A new personal token for the agent API (shown once); ``by`` is who, for the audit log."""
    return issue_agent_token(session, agent, by=by)[1]


def list_agent_tokens(session: Session, agent_id: str) -> Sequence[AgentToken]:
    """The agent's tokens, revoked ones too, newest first (never their secrets)."""
    return repository.agent_tokens(session, agent_id)


def revoke_agent_token(
    session: Session, token_id: str, *, agent_id: str | None = None, by: AuditActor | None = None
) -> AgentToken:
    """Revoke one token (of ``agent_id``, when given); revoking it again changes nothing."""
    row = repository.get_agent_token_by_id(session, token_id)
    if row is None or (agent_id is not None and row.agent_id != agent_id):
        raise NotFound(f"No personal token with id {token_id!r}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        detail = {"agent_id": row.agent_id, "agent_email": row.agent.email}
        audit.record(session, by, "agent_token.revoked", "agent_token", row.id, detail)
    return row


def revoke_agent_tokens(
    session: Session, agent: Agent, *, reason: str, by: AuditActor | None = None
) -> int:
    """Revoke every live token of the agent (each one audited, with why); returns how many."""
    now = utcnow()
    rows = repository.live_agent_tokens(session, agent.id)
    for row in rows:
        row.revoked_at = now
        detail = {"agent_id": agent.id, "agent_email": agent.email, "reason": reason}
        audit.record(session, by, "agent_token.revoked", "agent_token", row.id, detail)
    return len(rows)


def check_agent_token(session: Session, token: str) -> AgentToken:
    """The live token row for a bearer token of an active agent, or 401."""
    row = repository.get_agent_token(session, hash_secret(token))
    if row is None or row.revoked_at is not None or not row.agent.active:
        raise Unauthorized("The agent token is not valid.")
    return row


def authenticate_agent_token(session: Session, token: str) -> Agent:
    return check_agent_token(session, token).agent


def token_use_is_stale(row: AgentToken, now: datetime | None = None) -> bool:
    """Whether this use should be written down (at most once per ``TOKEN_USE_RESOLUTION``)."""
    if row.last_used_at is None:
        return True
    return as_utc(row.last_used_at) + TOKEN_USE_RESOLUTION <= (now or utcnow())


def record_token_use(session: Session, token_hash: str) -> None:
    now = utcnow()
    repository.record_agent_token_use(session, token_hash, now, now - TOKEN_USE_RESOLUTION)
