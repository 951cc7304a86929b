"""The tickets' wire shapes: Intercom's (``ticket``, ``ticket_type``, ``ticket_state``, with unix
timestamps), so that scripts written against Intercom's API port over."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from findesk.kit.schemas import Id
from findesk.kit.text import STORABLE, AttributesIn, NameText, limited

Category = Literal["Customer", "Back-office", "Tracker"]
DataType = Literal["string", "number", "boolean", "date", "list"]
StateCategory = Literal["submitted", "in_progress", "waiting_on_customer", "resolved"]
DescriptionText = Annotated[str, limited(10_000), STORABLE]
IconText = Annotated[str, limited(64), STORABLE]
ATTRIBUTES_MAX = 100  # on one ticket type
LIST_ITEMS_MAX = 250  # in one list attribute


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ListItemIn(_In):
    id: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="An existing item's id, to keep it; none for a new item."
    )
    label: Annotated[NameText, Field(min_length=1)]
    archived: bool = False


class TicketTypeAttributeIn(_In):
    name: Annotated[NameText, Field(min_length=1)]
    description: DescriptionText = ""
    data_type: DataType
    required_to_create: bool = False
    visible_to_contacts: bool = Field(
        default=True, description="Shown to the end user (a customer ticket's)."
    )
    list_items: Annotated[list[ListItemIn], Field(max_length=LIST_ITEMS_MAX)] | None = Field(
        default=None, description="A list attribute's choices (required for one)."
    )


class TicketTypeAttributeUpdate(_In):
    """Only the fields present change. An attribute is never deleted: archive it."""

    description: DescriptionText | None = None
    required_to_create: bool | None = None
    visible_to_contacts: bool | None = None
    archived: bool | None = None
    list_items: Annotated[list[ListItemIn], Field(max_length=LIST_ITEMS_MAX)] | None = Field(
        default=None,
        description="Replaces the choices: items sent with their id keep it; an item left out "
        "is archived (tickets may still hold its id).",
    )


class TicketTypeCreate(_In):
    name: Annotated[NameText, Field(min_length=1)]
    description: DescriptionText = ""
    icon: IconText = "🎟️"
    category: Category = "Customer"
    ticket_type_attributes: Annotated[
        list[TicketTypeAttributeIn], Field(max_length=ATTRIBUTES_MAX)
    ] = Field(default_factory=list, description="Besides the two default ones.")


class TicketTypeUpdate(_In):
    """Only the fields present change."""

    name: Annotated[NameText, Field(min_length=1)] | None = None
    description: DescriptionText | None = None
    icon: IconText | None = None
    category: Category | None = None
    archived: bool | None = None


class ConvertIn(_In):
    ticket_type_id: Id
    attributes: AttributesIn | None = Field(
        default=None,
        description="By attribute name: `_default_title_`, `_default_description_` and the "
        "type's own; a list attribute takes its item's id.",
    )
    ticket_state_id: Id | None = Field(
        default=None, description="The state to start in (Intercom's Preview); submitted if none."
    )


class ContactIn(_In):
    id: Id = Field(description="The end user's id (`usr_…`).")


class TicketCreate(_In):
    """Intercom's Create Ticket: a ticket without a conversation (a back-office or tracker
    ticket, or a customer ticket opened for an end user)."""

    ticket_type_id: Id
    contacts: Annotated[list[ContactIn], Field(max_length=1)] = Field(
        default_factory=list,
        description="The end user it is for (at most one); a customer ticket needs one.",
    )
    ticket_attributes: AttributesIn | None = None
    ticket_state_id: Id | None = None


class TicketUpdate(_In):
    ticket_attributes: AttributesIn | None = Field(
        default=None, description="Merged by name; null removes an optional one."
    )
    ticket_state_id: Id | None = None
    tracker_ticket_id: Id | None = Field(
        default=None,
        description="Link a customer ticket to a tracker ticket (its state changes then move "
        "this one too); null unlinks it.",
    )


# --- out --------------------------------------------------------------------------------------


class ListItemOut(BaseModel):
    id: str
    label: str
    archived: bool


class InputOptions(BaseModel):
    list_options: list[ListItemOut]


class TicketTypeAttributeOut(BaseModel):
    type: Literal["ticket_type_attribute"] = "ticket_type_attribute"
    id: str
    ticket_type_id: str
    name: str
    description: str
    data_type: DataType
    input_options: InputOptions | None
    order: int
    required_to_create: bool
    visible_to_contacts: bool
    default: bool = Field(description="`_default_title_` or `_default_description_`.")
    archived: bool


class TicketTypeAttributeList(BaseModel):
    type: Literal["list"] = "list"
    data: list[TicketTypeAttributeOut]


class TicketTypeOut(BaseModel):
    type: Literal["ticket_type"] = "ticket_type"
    id: str
    name: str
    description: str
    icon: str
    category: Category
    ticket_type_attributes: TicketTypeAttributeList
    archived: bool
    created_at: int = Field(description="Unix seconds.")
    updated_at: int = Field(description="Unix seconds.")


class TicketTypeListOut(BaseModel):
    type: Literal["list"] = "list"
    data: list[TicketTypeOut]


class TicketStateOut(BaseModel):
    type: Literal["ticket_state"] = "ticket_state"
    id: str
    category: StateCategory
    internal_label: str
    external_label: str


class TicketStateListOut(BaseModel):
    type: Literal["list"] = "list"
    data: list[TicketStateOut]


class ContactRef(BaseModel):
    type: Literal["contact"] = "contact"
    id: str
    external_id: str | None
    email: str | None


class ContactList(BaseModel):
    type: Literal["contact.list"] = "contact.list"
    contacts: list[ContactRef]


class LinkedObject(BaseModel):
    type: Literal["conversation", "ticket"]
    id: str
    category: Category | None


class LinkedObjectList(BaseModel):
    type: Literal["list"] = "list"
    total_count: int
    has_more: bool
    data: list[LinkedObject]


class TicketOut(BaseModel):
    type: Literal["ticket"] = "ticket"
    id: str
    ticket_id: str = Field(description="The ticket's short public number.")
    category: Category
    ticket_attributes: dict[str, Any]
    ticket_state: TicketStateOut
    ticket_type: TicketTypeOut
    contacts: ContactList
    admin_assignee_id: str | None = Field(description="The conversation's human owner, if any.")
    team_assignee_id: None = None
    open: bool = Field(description="False once resolved.")
    is_shared: bool = Field(description="A customer ticket: the end user sees it.")
    linked_objects: LinkedObjectList
    conversation_id: str | None = Field(description="The conversation holding its thread.")
    created_at: int
    updated_at: int


class Pages(BaseModel):
    type: Literal["pages"] = "pages"
    page: int
    per_page: int
    total_pages: int


class TicketListOut(BaseModel):
    type: Literal["ticket.list"] = "ticket.list"
    tickets: list[TicketOut]
    total_count: int
    pages: Pages
