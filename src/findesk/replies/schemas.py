"""The agent API's shapes for saved replies and macros, and the macro actions' own schema (which
the service also uses to check actions sent by the inbox's forms)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from findesk.agent_api.schemas import ConversationView, MessageView
from findesk.kit.schemas import Timestamp
from findesk.kit.text import (
    MESSAGE_BODY_MAX,
    STORABLE,
    TAGS_MAX,
    AttributesIn,
    TagText,
    limited,
)

TITLE_MAX = 255
ACTIONS_MAX = 20
TitleText = Annotated[str, limited(TITLE_MAX), STORABLE, Field(min_length=1)]
BodyHtml = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MESSAGE_BODY_MAX,
        description="HTML, sanitised as replies are; may hold placeholders such as "
        "`{{user.name}}` or `{{user.name|there}}` (a fallback for a missing value).",
    ),
]
Id = Annotated[str, Field(min_length=1, max_length=40)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- macro actions ---------------------------------------------------------------------------


class TakeOverAction(_In):
    """The agent applying the macro becomes the owner."""

    type: Literal["take_over"]


class ReplyAction(_In):
    """A public reply: the saved reply, its placeholders filled for the conversation."""

    type: Literal["reply"]
    saved_reply_id: Id


class NoteAction(_In):
    """A private note (placeholders allowed)."""

    type: Literal["note"]
    body: BodyHtml


class AddTagsAction(_In):
    """Add these tags to the conversation's (those it has stay)."""

    type: Literal["add_tags"]
    tags: list[TagText] = Field(min_length=1, max_length=TAGS_MAX)


class SetAttributesAction(_In):
    """Merge into the conversation's attributes (a null value removes the key)."""

    type: Literal["set_attributes"]
    attributes: AttributesIn


class SetStatusAction(_In):
    type: Literal["set_status"]
    status: Literal["open", "resolved", "closed"]


class AssignAction(_In):
    """Give the conversation to an agent (a bot: back to Fin), or to nobody (null)."""

    type: Literal["assign"]
    agent_id: Id | None


MacroAction = Annotated[
    TakeOverAction
    | ReplyAction
    | NoteAction
    | AddTagsAction
    | SetAttributesAction
    | SetStatusAction
    | AssignAction,
    Field(discriminator="type"),
]
ActionList = Annotated[list[MacroAction], Field(min_length=1, max_length=ACTIONS_MAX)]
ACTION_TYPES = {
    "take_over": "Take over",
    "reply": "Reply with a saved reply",
    "note": "Add a private note",
    "add_tags": "Add tags",
    "set_attributes": "Set attributes",
    "set_status": "Set status",
    "assign": "Assign",
}


# --- saved replies ----------------------------------------------------------------------------


class SavedReplyCreate(_In):
    title: TitleText
    body: BodyHtml
    shared: bool = Field(
        default=False,
        strict=True,
        description="Shared with the team (administrators only) or personal to the caller.",
    )
    article_id: Id | None = Field(
        default=None, description="A published article, linked under the body when inserted."
    )


class SavedReplyPatch(_In):
    """Only the fields present change; `article_id: null` removes the link."""

    title: TitleText | None = None
    body: BodyHtml | None = None
    article_id: Id | None = None


class SavedReplyView(BaseModel):
    id: str
    title: str
    body: str = Field(description="Sanitised HTML, placeholders as written.")
    shared: bool
    owner_id: str | None = Field(description="The agent it is personal to; null when shared.")
    article_id: str | None
    article_title: str | None
    article_url: str | None = Field(description="The article's public page, the one Fin cites.")
    can_edit: bool = Field(description="Whether the caller may change or delete it.")
    created_at: Timestamp
    updated_at: Timestamp


class RenderedReply(BaseModel):
    id: str
    title: str
    html: str = Field(description="The body for this conversation, with the article's link.")
    text: str = Field(description="The same, as plain text.")


# --- macros -----------------------------------------------------------------------------------


class MacroCreate(_In):
    name: TitleText
    actions: ActionList
    shared: bool = Field(
        default=False,
        strict=True,
        description="Shared with the team (administrators only) or personal to the caller.",
    )


class MacroPatch(_In):
    name: TitleText | None = None
    actions: ActionList | None = None


class MacroView(BaseModel):
    id: str
    name: str
    actions: list[dict[str, Any]] = Field(description="In the order they are applied.")
    shared: bool
    owner_id: str | None
    can_edit: bool
    created_at: Timestamp
    updated_at: Timestamp


class MacroApplied(BaseModel):
    macro_id: str
    conversation: ConversationView = Field(description="The conversation once every action ran.")
    messages: list[MessageView] = Field(description="The replies and notes the macro wrote.")
