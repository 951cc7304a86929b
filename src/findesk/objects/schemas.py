"""Shapes of custom objects. Instances mirror Intercom's ``custom_object_instance`` (unix seconds,
``type`` the type's identifier); types and links are findesk's own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from findesk.kit.schemas import Timestamp

ATTRIBUTE_TYPES = ("string", "integer", "decimal", "boolean", "date", "datetime")
AttributeType = Literal["string", "integer", "decimal", "boolean", "date", "datetime"]
IDENTIFIER_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
ATTRIBUTE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
ATTRIBUTES_MAX = 100
EXTERNAL_ID_MAX = 255
STRING_VALUE_MAX = 10_000
PER_PAGE_MAX = 150
# Unix seconds from 1970 to the end of year 9999: what a datetime can hold.
UNIX_MAX = 253_402_300_799


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be unix seconds, not a boolean")
    return value


# Lax: `1392036272.0` is an integer to JSON Schema (and to Intercom's clients); `true` is not.
UnixTime = Annotated[int, Field(ge=0, le=UNIX_MAX), BeforeValidator(_not_bool)]
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Such as `Order`.")]
AttributeName = Annotated[str, Field(pattern=ATTRIBUTE_NAME_PATTERN)]
AttributeValue = Annotated[
    str | int | float | bool | None,
    Field(description="Checked against the attribute's type; null removes it."),
]
Label = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]*$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- types ------------------------------------------------------------------------------------


class AttributeDef(_In):
    name: AttributeName
    type: AttributeType = Field(
        description="`string`; `integer`; `decimal` (kept as a string, no digit lost); "
        "`boolean`; `date` (`YYYY-MM-DD`); `datetime` (ISO 8601 or unix seconds, kept as "
        "ISO 8601 UTC)."
    )
    label: Label | None = Field(default=None, description="Shown on cards; the name if unset.")


AttributeList = Annotated[list[AttributeDef], Field(max_length=ATTRIBUTES_MAX)]


class ObjectTypeCreate(_In):
    identifier: Identifier
    name: Label | None = Field(
        default=None, description="Shown in the inbox; the identifier if unset."
    )
    attributes: AttributeList = Field(default_factory=list)
    title_attribute: AttributeName | None = Field(
        default=None, description="The attribute shown as an instance's title on its card."
    )
    mirror_to_intercom: bool = Field(
        default=False,
        description="Keep the instances in step with Intercom's Custom Object Instances API "
        "(a type of the same identifier must exist in Intercom).",
    )


class ObjectTypePatch(_In):
    """Only the fields present change; `attributes` replaces the whole list (values of a removed
    attribute stay stored, unshown)."""

    name: Label | None = None
    attributes: AttributeList | None = None
    title_attribute: AttributeName | None = None
    mirror_to_intercom: bool | None = Field(
        default=None,
        description="Turned on, every instance is sent to Intercom; turned off, Intercom's "
        "copies are left as they are.",
    )


class ObjectTypeView(BaseModel):
    id: str
    identifier: str
    name: str
    attributes: list[AttributeDef]
    title_attribute: str | None
    mirror_to_intercom: bool
    instance_count: int
    created_at: Timestamp
    updated_at: Timestamp


# --- instances (Intercom's shapes) -----------------------------------------------------------


class InstanceIn(_In):
    """Intercom's `create_or_update_custom_object_instance_request`. `external_id` is required
    here (Intercom's schema lists no required field, but the upsert is keyed on it)."""

    external_id: Annotated[
        str, Field(min_length=1, max_length=EXTERNAL_ID_MAX, pattern=r"^[^\x00-\x1f\x7f]*$")
    ]
    external_created_at: UnixTime | None = None
    external_updated_at: UnixTime | None = None
    custom_attributes: dict[AttributeName, AttributeValue] | None = Field(
        default=None,
        max_length=ATTRIBUTES_MAX,
        description="Attribute name to value, merged into the instance's (null removes one); "
        "every name must be an attribute of the type.",
    )


class InstanceView(BaseModel):
    """Intercom's `custom_object_instance`."""

    id: str
    type: str = Field(description="The type's identifier.")
    external_id: str
    external_created_at: int | None
    external_updated_at: int | None
    created_at: int
    updated_at: int
    custom_attributes: dict[str, Any]


class InstanceDeleted(BaseModel):
    """Intercom's `custom_object_instance_deleted`."""

    object: str = Field(description="The type's identifier.")
    id: str
    deleted: bool


class Pages(BaseModel):
    type: Literal["pages"] = "pages"
    page: int
    per_page: int
    total_pages: int
    next: str | None = Field(description="The next page's URL; null on the last page.")


class InstanceList(BaseModel):
    """Intercom's `custom_object_instances_paginated_list`, newest first."""

    type: Literal["list"] = "list"
    pages: Pages
    total_count: int
    data: list[InstanceView]


class InstanceLink(BaseModel):
    """An instance's link to an end user (`contact`) or a conversation."""

    type: Literal["contact", "conversation"]
    id: str = Field(description="findesk's id of the end user or conversation.")
    instance: InstanceView
    linked: bool = Field(description="Whether they are linked now.")
