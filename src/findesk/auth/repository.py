from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from findesk.auth.models import AccessToken, AgentToken, OAuthClient


def get_client(session: Session, client_id: str) -> OAuthClient | None:
    return session.get(OAuthClient, client_id)


def list_clients(session: Session) -> Sequence[OAuthClient]:
    return session.scalars(select(OAuthClient).order_by(OAuthClient.created_at)).all()


def get_access_token(session: Session, token_hash: str) -> AccessToken | None:
    return session.get(AccessToken, token_hash)


# Built once: a statement object memoizes its cache key, and this runs on every Fin API call.
_ACCESS_TOKEN_STATE = (
    select(
        AccessToken.client_id,
        AccessToken.expires_at,
        AccessToken.revoked_at,
        OAuthClient.revoked_at,
    )
    .join(OAuthClient, OAuthClient.id == AccessToken.client_id)
    .where(AccessToken.token_hash == bindparam("token_hash"))
)


def access_token_state(
    connection: Connection, token_hash: str
) -> Row[str, datetime, datetime | None, datetime | None] | None:
    """The token's client, expiry and revocation, and its client's revocation: no ORM object
    (the Fin API checks a token on every call)."""
    return connection.execute(_ACCESS_TOKEN_STATE, {"token_hash": token_hash}).first()


def revoke_client_tokens(session: Session, client_id: str, at: datetime) -> None:
    session.execute(
        update(AccessToken)
        .where(AccessToken.client_id == client_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def revoke_live_tokens_beyond(session: Session, client_id: str, keep: int, at: datetime) -> None:
    """Revoke the client's live tokens but the ``keep`` newest."""
    live = (
        AccessToken.client_id == client_id,
        AccessToken.revoked_at.is_(None),
        AccessToken.expires_at > at,
    )
    older = (
        select(AccessToken.token_hash)
        .where(*live)
        .order_by(AccessToken.created_at.desc(), AccessToken.token_hash)
        .offset(keep)
    )
    hashes = session.scalars(older).all()
    if hashes:
        session.execute(
            update(AccessToken).where(AccessToken.token_hash.in_(hashes)).values(revoked_at=at)
        )


def delete_expired_tokens(session: Session, client_id: str, before: datetime) -> None:
    session.execute(
        delete(AccessToken).where(
            AccessToken.client_id == client_id, AccessToken.expires_at < before
        )
    )


def get_agent_token(session: Session, token_hash: str) -> AgentToken | None:
    return session.get(AgentToken, token_hash)


def get_agent_token_by_id(session: Session, token_id: str) -> AgentToken | None:
    return session.scalars(select(AgentToken).where(AgentToken.id == token_id)).first()


def agent_tokens(session: Session, agent_id: str) -> Sequence[AgentToken]:
    """Every token of the agent, revoked ones too, newest first."""
    return session.scalars(
        select(AgentToken)
        .where(AgentToken.agent_id == agent_id)
        .order_by(AgentToken.created_at.desc(), AgentToken.id.desc())
    ).all()


def live_agent_tokens(session: Session, agent_id: str) -> Sequence[AgentToken]:
    return session.scalars(
        select(AgentToken)
        .where(AgentToken.agent_id == agent_id, AgentToken.revoked_at.is_(None))
        .order_by(AgentToken.created_at)
    ).all()


def record_agent_token_use(
    session: Session, token_hash: str, at: datetime, stale: datetime
) -> None:
    """Set the token's last use to ``at`` unless it was set after ``stale`` already."""
    session.execute(
        update(AgentToken)
        .where(
            AgentToken.token_hash == token_hash,
            or_(AgentToken.last_used_at.is_(None), AgentToken.last_used_at <= stale),
        )
        .values(last_used_at=at)
    )
