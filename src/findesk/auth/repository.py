from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from findesk.auth.models import AccessToken, AgentToken, OAuthClient


def get_client(session: Session, client_id: str) -> OAuthClient | None:
    return session.get(OAuthClient, client_id)


def list_clients(session: Session) -> Sequence[OAuthClient]:
    return session.scalars(select(OAuthClient).order_by(OAuthClient.created_at)).all()


def get_access_token(session: Session, token_hash: str) -> AccessToken | None:
    return session.get(AccessToken, token_hash)


def revoke_client_tokens(session: Session, client_id: str, at: datetime) -> None:
    session.execute(
        update(AccessToken)
        .where(AccessToken.client_id == client_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def delete_expired_tokens(session: Session, client_id: str, before: datetime) -> None:
    session.execute(
        delete(AccessToken).where(
            AccessToken.client_id == client_id, AccessToken.expires_at < before
        )
    )


def get_agent_token(session: Session, token_hash: str) -> AgentToken | None:
    return session.get(AgentToken, token_hash)
