from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from findesk.agents.models import Agent
from findesk.kit import ids
from findesk.kit.db import Base, UTCDateTime
from findesk.kit.timeutil import utcnow


class OAuthClient(Base):
    """A client-credentials client: what goes into Fin's Deployment UI."""

    __tablename__ = "oauth_clients"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the client_id
    name: Mapped[str] = mapped_column(String(255))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccessToken(Base):
    """An OAuth access token, stored only as its SHA-256."""

    __tablename__ = "oauth_access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    client: Mapped[OAuthClient] = relationship(lazy="joined", innerjoin=True)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id, stored here only as its SHA-256."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    # Rendered into the pages' forms and sent back: the synchroniser token against CSRF.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    agent: Mapped[Agent] = relationship(lazy="joined", innerjoin=True)


class AgentToken(Base):
    """An agent's personal token for the agent API, stored only as its SHA-256."""

    __tablename__ = "agent_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # What people list and revoke it by: the secret is shown once, when it is issued.
    id: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: ids.new_id(ids.AGENT_TOKEN)
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    label: Mapped[str | None] = mapped_column(String(255))  # what it is for, e.g. "CI deploys"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # To the hour (see auth.service.TOKEN_USE_RESOLUTION): not a write per call.
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    agent: Mapped[Agent] = relationship(lazy="joined", innerjoin=True)
