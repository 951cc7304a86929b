from __future__ import annotations

from typing import Annotated, Any, Literal

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
    handed_over_at: Timestamp | None = Field(description="When Fin last handed it over.")
    taken_over_at: Timestamp | None = Field(
        description="When a human last took it (from Fin or from the waiting queue)."
    )
    first_human_reply_at: Timestamp | None = Field(
        description="The first public reply a human wrote in it."
    )


Author = Annotated[EndUserOut | AgentView, Field(discriminator="user_type")]


class MessageView(MessageOut):
    author: Author
    after_take_over: bool = Field(
        description="Fin wrote it while a human owned the conversation (a late sync run)."
    )
    seen_by_fin_at: Timestamp | None = Field(
        description="A human's public reply: when Fin first fetched it; null until then."
    )


HistoryKind = Literal[
    "created",
    "handover",
    "take_over",
    "hand_back",
    "assigned",
    "assignment_ignored",
    "status",
    "tags",
    "title",
    "attributes",
    "priority",
    "merge",
    "conversion",
]


class HistoryEventView(BaseModel):
    """One change. Ownership kinds (handover, take_over, hand_back, assigned) and
    assignment_ignored carry agent ids (null: nobody) in from_value/to_value; an ignored
    assignment's detail has what Fin ``requested``."""

    id: int
    kind: HistoryKind
    at: Timestamp
    actor: Literal["fin", "agent", "system"]
    actor_agent: AgentView | None
    from_value: Any
    to_value: Any
    detail: dict[str, Any]


class HistoryPage(BaseModel):
    items: list[HistoryEventView]
    next_after_id: int | None = Field(
        description="Pass as `after_id` for the next page; null at the end."
    )


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
