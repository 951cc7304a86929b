from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _whole(value: object) -> object:
    """JSON has one kind of number: 30.0 is the whole number 30 (true stays refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Minutes = Annotated[int, Field(ge=1, le=1440), BeforeValidator(_whole)]
EventName = Literal["conversation.handed_over", "conversation.assigned", "sla.breached"]


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(max_length=2048, description="Where to POST events (http or https).")
    events: list[EventName] = Field(min_length=1, max_length=3)
    format: Literal["json", "slack"] = Field(
        default="json",
        description="`json`: the event as Standard Webhooks' payload (`type`, `timestamp`, "
        "`data`); `slack`: a Slack incoming-webhook message (`text`, `blocks`).",
    )


class WebhookEndpointView(BaseModel):
    id: str
    url: str
    events: list[str]
    format: str
    active: bool
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointView):
    secret: str = Field(
        description="The signing secret (`whsec_…`), shown this once: verify "
        "`webhook-signature` with it."
    )


class AlertPreferencesIO(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email_handover: bool = Field(
        default=False, description="Email me when Fin hands a conversation over to my queue."
    )
    email_assigned: bool = Field(
        default=True, description="Email me when a conversation is assigned to me."
    )
    digest_minutes: Minutes | None = Field(
        default=None,
        description="Gather my alert emails and send them every N minutes; null: at once.",
    )
