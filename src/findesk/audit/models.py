from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow


class AuditEntry(Base):
    """One administrative action. Append-only; never purged, never edited."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action", "action", "id"),
        Index("ix_audit_log_actor", "actor_agent_id", "id"),
        Index("ix_audit_log_target", "target_type", "target_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # agent.created, agent.updated, agent.deactivated, agent.reactivated, agent.password_set,
    # oauth_client.created, oauth_client.revoked, agent_token.issued, agent_token.revoked,
    # setting.changed, team.created, team.updated, team.deleted, team.member_added,
    # team.member_removed, agent.capacity_set, routing_rule.created, routing_rule.updated,
    # routing_rule.deleted
    action: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))  # agent (inbox, agent API), cli, system
    # No foreign key: the entry outlives anything it names.
    actor_agent_id: Mapped[str | None] = mapped_column(String(40))
    actor_label: Mapped[str] = mapped_column(String(320))  # the agent's email, or "cli"
    address: Mapped[str | None] = mapped_column(String(64))  # client address; null for the CLI
    # agent, oauth_client, agent_token, team, routing_rule, …
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
