"""The Fin Custom Helpdesk wire format (spec section 3), field for field.

Every documented field is always present in a response; a value we do not have is null.
Requests ignore unknown fields so that Fin may add some without breaking us.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from findesk.kit.schemas import Attributes, Email, HttpUrl, Id, ProblemOut, Timestamp, UTCInput
from findesk.kit.text import (
    MESSAGE_BODY_MAX,
    TAGS_MAX,
    AttributesIn,
    ConversationTitleText,
    NameText,
    TagText,
)

Status = Literal["open", "resolved", "closed", "ended"]
Visibility = Literal["public", "private"]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- responses -----------------------------------------------------------------------------


class EndUserOut(BaseModel):
    """End user having a conversation with Fin or with an agent."""

    id: str = Field(examples=["usr_5k2m9x7h4q1w3e8r6t0y"])
    user_type: Literal["end_user"] = "end_user"
    name: str | None
    email: str | None = Field(json_schema_extra={"format": "email"})
    photo_url: str | None = Field(json_schema_extra={"format": "uri"})
    attributes: Attributes | None


class AgentOut(BaseModel):
    """Agent having a conversation with an end-user (Fin counts as an agent)."""

    id: str = Field(examples=["agt_5k2m9x7h4q1w3e8r6t0y"])
    user_type: Literal["agent"] = "agent"
    name: str | None
    email: str | None = Field(json_schema_extra={"format": "email"})
    photo_url: str | None = Field(json_schema_extra={"format": "uri"})
    alias: str | None


class Attachment(_In):
    url: HttpUrl = Field(examples=["https://example.com/files/pricing-guide.pdf"])
    filetype: str | None = Field(default=None, max_length=255, examples=["pdf"])
    filename: str | None = Field(default=None, max_length=1024, examples=["Pricing Guide 2025"])


class AttachmentOut(BaseModel):
    url: str
    filetype: str | None
    filename: str | None


class ConversationOut(BaseModel):
    id: str
    status: Status
    user: EndUserOut
    title: str | None
    tags: list[str]
    attributes: Attributes
    assignee: AgentOut | None
    created_at: Timestamp
    updated_at: Timestamp


Author = Annotated[EndUserOut | AgentOut, Field(discriminator="user_type")]


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    message_type: Literal["comment"] = "comment"
    body: str | None = Field(description="HTML; null only when the message has attachments.")
    author: Author
    visibility: Visibility
    created_at: Timestamp
    attachments: list[AttachmentOut]


class CreatedConversationOut(BaseModel):
    conversation: ConversationOut
    initial_message: MessageOut


T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """Posts-only variant: every answer is wrapped."""

    data: T | None
    error: ProblemOut | None


# --- requests ------------------------------------------------------------------------------


class AuthorRef(_In):
    id: Id
    user_type: Literal["end_user", "agent"]


class GetUserIn(_In):
    user_id: Id


class CreateUserIn(_In):
    object_id: Id = Field(description="The user's id in Intercom; repeats return the same user.")
    name: NameText | None = None
    email: Email | None = None
    photo_url: HttpUrl | None = None
    attributes: AttributesIn | None = None


class UpdateUserIn(_In):
    user_id: Id
    attributes: AttributesIn | None = None
    name: NameText | None = None
    email: Email | None = None
    photo_url: HttpUrl | None = None


class GetAgentsIn(_In):
    pass


class GetConversationIn(_In):
    conversation_id: Id


class InitialMessageIn(_In):
    conversation_id: str | None = Field(default=None, description="Ignored: not known yet.")
    message_type: Literal["comment"] = "comment"
    body: str | None = Field(default=None, max_length=MESSAGE_BODY_MAX)
    author: AuthorRef
    visibility: Visibility = "public"
    attributes: AttributesIn | None = Field(
        default=None, description="Merged into the new conversation's attributes."
    )
    created_at: UTCInput | None = None
    object_id: Id
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)


class CreateConversationIn(_In):
    title: ConversationTitleText | None = None
    user_id: Id
    object_id: Id
    initial_message: InitialMessageIn


class UpdateConversationIn(_In):
    """Only the fields present change; ``assignee_id: null`` hands over to a human."""

    conversation_id: Id
    title: ConversationTitleText | None = None
    tags: list[TagText] | None = Field(default=None, max_length=TAGS_MAX)
    attributes: AttributesIn | None = None
    status: Status | None = None
    assignee_id: Id | None = None
    last_user_read_at: UTCInput | None = None


class GetMessagesIn(_In):
    conversation_id: Id
    after_id: str | None = None


class CreateMessageIn(_In):
    conversation_id: Id
    message_type: Literal["comment"] = "comment"
    body: str | None = Field(default=None, max_length=MESSAGE_BODY_MAX)
    author: AuthorRef
    visibility: Visibility = "public"
    created_at: UTCInput | None = None
    object_id: Id
    attachments: list[Attachment] = Field(default_factory=list, max_length=50)


class ErrorEnvelope(BaseModel):
    """Posts-only variant: a failure."""

    data: None = None
    error: ProblemOut
