from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from findesk.fin_api.schemas import (
    AgentOut,
    ConversationOut,
    EndUserOut,
    MessageOut,
    Status,
    Visibility,
)
from findesk.kit.schemas import Attributes, Timestamp

Owner = Literal["fin", "human", "waiting"]
Queue = Literal["waiting", "mine", "fin", "all"]


class AgentView(AgentOut):
    is_bot: bool
    role: str


class ConversationView(ConversationOut):
    assignee: AgentView | None
    owner: Owner = Field(description="Who answers: Fin, a human agent, or nobody yet.")
    last_user_read_at: Timestamp | None
    last_activity_at: Timestamp


Author = Annotated[EndUserOut | AgentView, Field(discriminator="user_type")]


class MessageView(MessageOut):
    author: Author


class ConversationPage(BaseModel):
    items: list[ConversationView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class ConversationDetail(BaseModel):
    conversation: ConversationView
    messages: list[MessageView]


class QueueCounts(BaseModel):
    waiting: int
    mine: int
    fin: int
    all: int


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplyIn(_In):
    body: str = Field(min_length=1, max_length=512 * 1024, description="HTML; sanitised.")
    visibility: Visibility = "public"


class ConversationPatch(_In):
    """Only the fields present change; `assignee_id: null` leaves it to nobody."""

    status: Status | None = None
    assignee_id: str | None = Field(default=None, max_length=255)
    tags: list[Annotated[str, Field(max_length=255)]] | None = Field(default=None, max_length=100)
    attributes: Attributes | None = None
    title: str | None = Field(default=None, max_length=1024)


class TypingOut(BaseModel):
    accepted: bool
