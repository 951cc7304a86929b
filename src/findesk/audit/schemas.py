"""The audit log as the CLI (and any API) shows it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from findesk.kit.schemas import Timestamp


class AuditEntryView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: Timestamp
    action: str
    actor_kind: str
    actor_agent_id: str | None
    actor_label: str
    address: str | None
    target_type: str
    target_id: str | None
    detail: dict[str, Any]
