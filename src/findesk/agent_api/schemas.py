from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from findesk.conversations.models import HistoryKind
from findesk.fin_api.schemas import (
    AgentOut,
    ConversationOut,
    EndUserOut,
    MessageOut,
    Status,
    Visibility,
)
from findesk.kit.schemas import Email, Timestamp
from findesk.kit.text import (
    MESSAGE_BODY_MAX,
    TAGS_MAX,
    AttributesIn,
    ConversationTitleText,
    TagText,
)

Owner = Literal["fin", "human", "waiting"]
Queue = Literal["waiting", "mine", "fin", "snoozed", "all"]


class AgentView(AgentOut):
    is_bot: bool
    role: str
    active: bool = Field(description="False once deactivated: cannot sign in or be assigned.")


class AgentTokenView(BaseModel):
    """A personal token as admins see it: never its secret."""

    id: str
    agent_id: str
    label: str | None
    created_at: Timestamp
    last_used_at: Timestamp | None = Field(description="To the hour; null if never used.")
    revoked_at: Timestamp | None


class AgentDeactivated(BaseModel):
    agent: AgentView
    tokens_revoked: int
    unassigned_conversation_ids: list[str] = Field(
        description="Open conversations it owned, now waiting for a human again."
    )


class EndUserView(EndUserOut):
    role: Literal["visitor", "user"] = Field(
        description="Derived: `visitor` for an end user without an email (an anonymous "
        "Messenger visitor), else `user`. `POST /visitors/convert` makes a visitor a user."
    )


class ConversationView(ConversationOut):
    user: EndUserView
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
    snoozed_until: Timestamp | None = Field(
        description="Snoozed: out of its queue until then (or until the end user writes)."
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


class ConversationListItem(ConversationView):
    unread: bool = Field(
        description="It has a message by someone other than you newer than the newest you "
        "were shown (by `GET /conversations/{conversation_id}` or in the inbox); one you never "
        "opened is unread once anyone else wrote in it. Your own replies and notes never make "
        "it unread."
    )


class ConversationPage(BaseModel):
    items: list[ConversationListItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class SearchHit(BaseModel):
    conversation: ConversationView
    snippet: str = Field(
        description="HTML: the matching text around its first match, escaped, each matching "
        "word in `<mark>`."
    )
    message_id: str | None = Field(
        description="The newest message that matched; null when the title, the end user's "
        "name or email did."
    )


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


MESSAGE_PAGE_SIZE = 50
MAX_MESSAGE_PAGE_SIZE = 200

OLDER_CURSOR = "Pass as `before` for the page of older messages; null when there are none."


class CsatView(BaseModel):
    """The rating request findesk sent when the conversation was resolved, and the rating."""

    requested_at: Timestamp
    score: int | None = Field(description="1 to 5; null until the end user rates.")
    comment: str | None = Field(description="Plain text, as the end user typed it.")
    rated_at: Timestamp | None


class ConversationDetail(BaseModel):
    conversation: ConversationView
    messages: list[MessageView] = Field(
        description="Its newest messages (`limit` of them), in creation order."
    )
    has_more_before: bool = Field(description="It has older messages than these.")
    before_cursor: str | None = Field(description=OLDER_CURSOR)
    csat: CsatView | None = Field(
        default=None, description="Its rating request and rating (CSAT); null if never asked."
    )


class MessagePage(BaseModel):
    """A page of a conversation's messages, in creation order whichever way it was paged."""

    items: list[MessageView]
    has_more_before: bool = Field(description="There are older messages than these.")
    before_cursor: str | None = Field(description=OLDER_CURSOR)
    has_more_after: bool = Field(description="There are newer messages than these.")
    after_cursor: str | None = Field(
        description="Pass as `after_id` for the page of newer messages; null when there are "
        "none yet (to wait for new ones, pass the last item's id)."
    )


class QueueCounts(BaseModel):
    waiting: int = Field(description="Waiting for a human, not snoozed.")
    mine: int = Field(description="The calling agent's, not snoozed.")
    fin: int
    snoozed: int = Field(description="Snoozed, whoever owns them.")
    all: int = Field(description="Every open conversation, snoozed or not.")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplyIn(_In):
    body: str = Field(min_length=1, max_length=MESSAGE_BODY_MAX, description="HTML; sanitised.")
    visibility: Visibility = "public"


class ConversationPatch(_In):
    """Only the fields present change; `assignee_id: null` leaves it to nobody."""

    status: Status | None = None
    assignee_id: str | None = Field(default=None, max_length=255)
    tags: list[TagText] | None = Field(default=None, max_length=TAGS_MAX)
    attributes: AttributesIn | None = None
    title: ConversationTitleText | None = None
    snoozed_until: AwareDatetime | None = Field(
        default=None,
        description="Snooze until then (with a time zone; within a year); null wakes it now.",
    )


class TypingOut(BaseModel):
    accepted: bool


# --- visitors: Intercom's convert visitor, in its shapes ---------------------------------------


class ContactRef(BaseModel):
    """An end user, named by one of these (the first given counts; a `user_id` that no end
    user has falls back to the `email`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    id: SkipJsonSchema[None] | Annotated[str, Field(min_length=1, max_length=255)] = Field(
        default=None, description="findesk's end-user id (`usr_…`), or one it had before a merge."
    )
    user_id: SkipJsonSchema[None] | Annotated[str, Field(min_length=1, max_length=255)] = Field(
        default=None,
        description="The id the end user is known by outside findesk: its `object_id` (the id "
        "Fin created it with), or one it had before a merge.",
    )
    email: SkipJsonSchema[None] | Email = Field(default=None)

    @model_validator(mode="after")
    def _named(self) -> ContactRef:
        if self.id is None and self.user_id is None and self.email is None:
            raise ValueError("give id, user_id or email")
        return self


class ConvertVisitorIn(BaseModel):
    """Intercom's `convert_visitor_request`. findesk has no leads: `type` is `user`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["user"] = Field(description="What the visitor becomes: a user.")
    user: ContactRef = Field(
        description="The user: merged into when it exists, else the visitor becomes it (then "
        "give its `email`)."
    )
    visitor: ContactRef = Field(description="The visitor (an end user without an email).")


class ContactView(BaseModel):
    """The user, as a subset of Intercom's `contact`."""

    type: Literal["contact"] = "contact"
    id: str
    external_id: str | None = Field(description="Its `object_id`: the id Fin knows it by.")
    role: Literal["visitor", "user"]
    email: str | None
    name: str | None
    avatar: str | None
    custom_attributes: dict[str, Any]
    created_at: int = Field(description="Unix seconds.")
    updated_at: int = Field(description="Unix seconds.")
    merged_ids: list[str] = Field(
        description="Every id it answers to besides its own: those of the end users merged "
        "into it (kind `id`) and their object_ids (`object_id:` before them)."
    )


class IntercomErrorItem(BaseModel):
    code: str
    message: str | None
    field: str | None


class IntercomError(BaseModel):
    """Intercom's error shape (`error.list`)."""

    type: Literal["error.list"] = "error.list"
    request_id: str | None
    errors: list[IntercomErrorItem]
