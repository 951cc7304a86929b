from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.timeutil import utcnow

RULE = "rrl"


class RoutingRule(Base):
    """One rule: when every condition holds, its actions apply. Rules are tried by ``position``
    (then id); the first that matches is the only one applied (``routing.service``)."""

    __tablename__ = "routing_rules"
    __table_args__ = (Index("ix_routing_rules_position", "position", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: ids.new_id(RULE))
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # [{"field": "tag" | "channel" | "time" | "conversation.<key>" | "user.<key>", "op": …,
    #   "value": …}], all of which must hold (``schemas.Condition``).
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # {"team_id": …, "priority": …, "add_tags": […]} (``schemas.Actions``).
    actions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
