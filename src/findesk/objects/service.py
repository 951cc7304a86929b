"""Custom objects: one function per action. Services never commit.

Types are defined by administrators. Instances are upserted by ``external_id`` within their type,
their ``custom_attributes`` checked against the type's attributes (an unknown name or a value
of the wrong type is refused) and merged into what the instance has (null removes one). The
bulk import (``import_rows``) checks each row the same way and replaces the attributes of an
instance it updates: a row is the whole record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations import repository as conversation_repository
from findesk.conversations.models import Conversation
from findesk.kit import ids
from findesk.kit.commit_signal import CommitSignal
from findesk.kit.errors import Conflict, Forbidden, Invalid, NotFound
from findesk.kit.text import text_problem
from findesk.kit.timeutil import as_utc, isoformat, utcnow
from findesk.objects import repository
from findesk.objects.models import (
    ObjectConversationLink,
    ObjectInstance,
    ObjectType,
    ObjectUserLink,
)
from findesk.objects.schemas import (
    STRING_VALUE_MAX,
    UNIX_MAX,
    AttributeDef,
    InstanceIn,
)
from findesk.users import repository as user_repository
from findesk.users.models import EndUser

_INSTANCE_IN: TypeAdapter[InstanceIn] = TypeAdapter(InstanceIn)

# Wakes this process's mirror (objects.mirror) after a commit that left instances for Intercom.
mirror_requested = CommitSignal("objects_mirror")


class TypeNotFound(NotFound):
    """Intercom's ``TypeNotFound``."""

    def __init__(self, identifier: str) -> None:
        super().__init__(f"Custom object type `{identifier}` not found")


class ObjectNotFound(NotFound):
    """Intercom's ``ObjectNotFound``."""

    def __init__(self) -> None:
        super().__init__("Custom object instance not found")


def _field_invalid(message: str, field: str) -> Invalid:
    return Invalid(message, errors=[{"field": field, "message": message}])


def _require_admin(agent: Agent) -> None:
    if agent.role != "admin":
        raise Forbidden("Only administrators may define custom object types.")


# --- types ------------------------------------------------------------------------------------


def list_types(session: Session, agent: Agent) -> list[ObjectType]:
    _require_admin(agent)
    return list(repository.list_types(session))


def instance_counts(session: Session, types: list[ObjectType]) -> dict[str, int]:
    return repository.instance_counts(session, [t.id for t in types])


def get_type(session: Session, identifier: str) -> ObjectType:
    found = repository.type_by_identifier(session, identifier)
    if found is None:
        raise TypeNotFound(identifier)
    return found


def get_type_for(session: Session, agent: Agent, identifier: str) -> ObjectType:
    """The type, to an administrator."""
    _require_admin(agent)
    return get_type(session, identifier)


def _checked_attributes(
    attributes: list[AttributeDef], title_attribute: str | None
) -> list[dict[str, Any]]:
    names = [a.name for a in attributes]
    if len(set(names)) != len(names):
        raise _field_invalid("Two attributes have the same name.", "attributes")
    if title_attribute is not None and title_attribute not in names:
        raise _field_invalid(
            f"The title attribute {title_attribute!r} is not one of the attributes.",
            "title_attribute",
        )
    return [a.model_dump() for a in attributes]


def create_type(
    session: Session,
    agent: Agent,
    *,
    identifier: str,
    name: str | None,
    attributes: list[AttributeDef],
    title_attribute: str | None,
    mirror_to_intercom: bool = False,
) -> ObjectType:
    _require_admin(agent)
    if repository.type_by_identifier(session, identifier) is not None:
        raise Conflict(f"A custom object type `{identifier}` exists already.")
    now = utcnow()
    created = ObjectType(
        identifier=identifier,
        name=name or identifier,
        attributes=_checked_attributes(attributes, title_attribute),
        title_attribute=title_attribute,
        mirror_to_intercom=mirror_to_intercom,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(created)
            session.flush()
    except IntegrityError:  # created meanwhile by another request
        raise Conflict(f"A custom object type `{identifier}` exists already.") from None
    return created


def update_type(
    session: Session, agent: Agent, identifier: str, changes: Mapping[str, Any]
) -> ObjectType:
    """``changes`` holds the fields to change: ``name``, ``attributes`` (the whole list, as
    ``AttributeDef``), ``title_attribute`` (None: no title), ``mirror_to_intercom`` (turned on:
    every instance is queued for Intercom; turned off: Intercom's copies are left alone)."""
    _require_admin(agent)
    found = get_type(session, identifier)
    attributes = changes.get("attributes")
    title = changes.get("title_attribute", found.title_attribute)
    defs = (
        [AttributeDef.model_validate(a) for a in found.attributes]
        if attributes is None
        else list(attributes)
    )
    checked = _checked_attributes(defs, title)
    if changes.get("name") is not None:
        found.name = changes["name"]
    found.attributes = checked
    found.title_attribute = title
    if changes.get("mirror_to_intercom") is not None:
        _set_mirror(session, found, bool(changes["mirror_to_intercom"]))
    found.updated_at = utcnow()
    return found


def set_mirror(session: Session, identifier: str, mirror: bool) -> ObjectType:
    """Turn "mirror to Intercom" on or off (``findesk objects set-mirror``: the operator)."""
    found = get_type(session, identifier)
    if found.mirror_to_intercom != mirror:
        _set_mirror(session, found, mirror)
        found.updated_at = utcnow()
    return found


def _set_mirror(session: Session, found: ObjectType, mirror: bool) -> None:
    """On: every instance waits to be sent. Off: Intercom's copies are left as they are."""
    if mirror == found.mirror_to_intercom:
        return
    found.mirror_to_intercom = mirror
    if mirror:
        session.flush()
        repository.mark_type_pending(session, found.id)
        mirror_requested.mark(session)


def delete_type(session: Session, agent: Agent, identifier: str) -> None:
    """Refused while the type has instances (delete them first)."""
    _require_admin(agent)
    found = get_type(session, identifier)
    if repository.instance_counts(session, [found.id]).get(found.id):
        raise Conflict(f"The custom object type `{identifier}` has instances: delete them first.")
    session.delete(found)
    session.flush()


# --- attribute values ------------------------------------------------------------------------


def _coerce(kind: str, name: str, value: Any) -> Any:
    """The value as stored for an attribute of this kind, or ``ValueError`` saying why not."""
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("must be a string")
        text = value if isinstance(value, str) else str(value)
        if (problem := text_problem(text)) is not None:
            raise ValueError(problem)
        if len(text) > STRING_VALUE_MAX:
            raise ValueError(f"must be at most {STRING_VALUE_MAX} characters")
        return text
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,18}\s*", value):
            return int(value)
        if isinstance(value, int) and abs(value) < 2**63:
            return value
        raise ValueError("must be an integer")
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("must be a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError("must be a number") from None
        if not number.is_finite() or len(number.as_tuple().digits) > 38:
            raise ValueError("must be a number of at most 38 digits")
        return format(number, "f")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError("must be true or false")
    if kind == "date":
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ValueError("must be a date, YYYY-MM-DD")
    if kind == "datetime":
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= UNIX_MAX:
            return isoformat(datetime.fromtimestamp(value, UTC))
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                return isoformat(as_utc(parsed))
            except (ValueError, OverflowError):
                pass
        raise ValueError("must be an ISO 8601 date and time, or unix seconds")
    raise ValueError(f"has an unknown type {kind!r}")


def checked_values(object_type: ObjectType, raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw``'s values as stored, None kept (meaning: remove); ``Invalid`` naming the first
    attribute that is unknown or whose value does not fit its type."""
    kinds = {a["name"]: a["type"] for a in object_type.attributes}
    checked: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"custom_attributes.{name}"
        if name not in kinds:
            raise _field_invalid(f"`{object_type.identifier}` has no attribute `{name}`.", where)
        if value is None:
            checked[name] = None
            continue
        try:
            checked[name] = _coerce(kinds[name], name, value)
        except ValueError as exc:
            raise _field_invalid(f"The attribute `{name}` {exc}.", where) from None
    return checked


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _from_unix(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


# --- instances -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upserted:
    instance: ObjectInstance
    created: bool


def upsert_instance(session: Session, identifier: str, body: InstanceIn) -> Upserted:
    """Create the instance, or update the one with this external id (its attributes merged)."""
    object_type = get_type(session, identifier)
    values = checked_values(object_type, body.custom_attributes or {})
    fields = body.model_fields_set
    now = utcnow()
    found = repository.instance_by_external_id(session, object_type.id, body.external_id, lock=True)
    if found is None:
        found = ObjectInstance(
            type_id=object_type.id,
            external_id=body.external_id,
            custom_attributes={k: v for k, v in values.items() if v is not None},
            external_created_at=_from_unix(body.external_created_at),
            external_updated_at=_from_unix(body.external_updated_at),
            created_at=now,
            updated_at=now,
        )
        _queue_for_intercom(session, object_type, found)
        try:
            # A savepoint (begin_nested flushes what is pending first: add inside it).
            with session.begin_nested():
                session.add(found)
                session.flush()
            return Upserted(found, created=True)
        except IntegrityError:  # created meanwhile by another request: update it instead
            if found in session:  # the savepoint's rollback has usually expunged it
                session.expunge(found)
            found = repository.instance_by_external_id(
                session, object_type.id, body.external_id, lock=True
            )
            if found is None:
                raise
    merged = dict(found.custom_attributes or {})
    for name, value in values.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    found.custom_attributes = merged
    if "external_created_at" in fields:
        found.external_created_at = _from_unix(body.external_created_at)
    if "external_updated_at" in fields:
        found.external_updated_at = _from_unix(body.external_updated_at)
    found.updated_at = now
    _queue_for_intercom(session, object_type, found)
    session.flush()
    return Upserted(found, created=False)


def _queue_for_intercom(session: Session, object_type: ObjectType, found: ObjectInstance) -> None:
    """A changed instance of a mirrored type waits for ``objects.mirror`` (same transaction)."""
    if object_type.mirror_to_intercom:
        found.intercom_pending = True
        found.intercom_attempts = 0
        found.intercom_next_attempt_at = None
        mirror_requested.mark(session)


def get_instance(session: Session, identifier: str, instance_id: str) -> ObjectInstance:
    """By findesk's id or, as Intercom's path parameter allows, by external id."""
    object_type = get_type(session, identifier)
    found = repository.instance_by_id(session, object_type.id, instance_id)
    if found is None:
        found = repository.instance_by_external_id(session, object_type.id, instance_id)
    if found is None:
        raise ObjectNotFound()
    return found


def get_by_external_id(session: Session, identifier: str, external_id: str) -> ObjectInstance:
    object_type = get_type(session, identifier)
    found = repository.instance_by_external_id(session, object_type.id, external_id)
    if found is None:
        raise ObjectNotFound()
    return found


def delete_instance(session: Session, instance: ObjectInstance) -> None:
    """Deleted; an instance of a mirrored type leaves a tombstone, in the same transaction, until
    its copy in Intercom is deleted too."""
    if instance.object_type.mirror_to_intercom:
        repository.add_intercom_delete(
            session, instance.object_type.identifier, instance.external_id
        )
        mirror_requested.mark(session)
    session.delete(instance)
    session.flush()


def delete_by_id(session: Session, identifier: str, instance_id: str) -> ObjectInstance:
    """By findesk's id only (Intercom's DELETE by id takes its own id)."""
    object_type = get_type(session, identifier)
    found = repository.instance_by_id(session, object_type.id, instance_id)
    if found is None:
        raise ObjectNotFound()
    delete_instance(session, found)
    return found


def delete_by_external_id(session: Session, identifier: str, external_id: str) -> ObjectInstance:
    found = get_by_external_id(session, identifier, external_id)
    delete_instance(session, found)
    return found


def find_user(session: Session, user_id: str) -> EndUser | None:
    """By findesk's id, or by the id Intercom gave the user (its ``object_id``)."""
    return user_repository.get(session, user_id) or user_repository.get_by_object_id(
        session, user_id
    )


def find_conversation(session: Session, conversation_id: str) -> Conversation | None:
    return conversation_repository.get(
        session, conversation_id
    ) or conversation_repository.get_by_object_id(session, conversation_id)


@dataclass(frozen=True)
class Page:
    instances: list[ObjectInstance]
    total: int


def list_instances(
    session: Session,
    identifier: str,
    *,
    contact_id: str | None,
    conversation_id: str | None,
    page: int,
    per_page: int,
) -> Page:
    """Newest first. An unknown contact or conversation has no instances (an empty page)."""
    object_type = get_type(session, identifier)
    user_key = conversation_key = None
    if contact_id is not None:
        user = find_user(session, contact_id)
        if user is None:
            return Page([], 0)
        user_key = user.id
    if conversation_id is not None:
        conversation = find_conversation(session, conversation_id)
        if conversation is None:
            return Page([], 0)
        conversation_key = conversation.id
    rows, total = repository.list_instances(
        session,
        object_type.id,
        contact_id=user_key,
        conversation_id=conversation_key,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    return Page(list(rows), total)


# --- links -----------------------------------------------------------------------------------


def _user(session: Session, user_id: str) -> EndUser:
    user = find_user(session, user_id)
    if user is None:
        raise NotFound("Contact not found")
    return user


def _conversation(session: Session, conversation_id: str) -> Conversation:
    conversation = find_conversation(session, conversation_id)
    if conversation is None:
        raise NotFound("Conversation not found")
    return conversation


def link_user(session: Session, identifier: str, instance_id: str, user_id: str) -> str:
    """Link (again: no change); the end user's findesk id."""
    instance = get_instance(session, identifier, instance_id)
    user = _user(session, user_id)
    if not repository.has_user_link(session, instance.id, user.id):
        link = ObjectUserLink(user_id=user.id, instance_id=instance.id, created_at=utcnow())
        try:
            with session.begin_nested():
                session.add(link)
                session.flush()
        except IntegrityError:  # linked meanwhile
            pass
    return user.id


def unlink_user(session: Session, identifier: str, instance_id: str, user_id: str) -> str:
    instance = get_instance(session, identifier, instance_id)
    user = _user(session, user_id)
    repository.unlink_user(session, instance.id, user.id)
    return user.id


def link_conversation(
    session: Session, identifier: str, instance_id: str, conversation_id: str
) -> str:
    instance = get_instance(session, identifier, instance_id)
    conversation = _conversation(session, conversation_id)
    if not repository.has_conversation_link(session, instance.id, conversation.id):
        link = ObjectConversationLink(
            conversation_id=conversation.id, instance_id=instance.id, created_at=utcnow()
        )
        try:
            with session.begin_nested():
                session.add(link)
                session.flush()
        except IntegrityError:
            pass
    return conversation.id


def unlink_conversation(
    session: Session, identifier: str, instance_id: str, conversation_id: str
) -> str:
    instance = get_instance(session, identifier, instance_id)
    conversation = _conversation(session, conversation_id)
    repository.unlink_conversation(session, instance.id, conversation.id)
    return conversation.id


# --- cards -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    id: str
    type_identifier: str
    type_name: str
    external_id: str
    title: str
    attributes: list[tuple[str, str]]  # (label, value), the first few, title excluded


@dataclass(frozen=True)
class Cards:
    cards: list[Card]
    total: int


CARD_ATTRIBUTES = 3


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def card_of(instance: ObjectInstance, object_type: ObjectType) -> Card:
    values = instance.custom_attributes or {}
    title_name = object_type.title_attribute
    title = values.get(title_name) if title_name else None
    shown: list[tuple[str, str]] = []
    for attribute in object_type.attributes:
        name = attribute["name"]
        if name == title_name or values.get(name) is None:
            continue
        shown.append((attribute.get("label") or name, _shown(values[name])))
        if len(shown) == CARD_ATTRIBUTES:
            break
    return Card(
        id=instance.id,
        type_identifier=object_type.identifier,
        type_name=object_type.name,
        external_id=instance.external_id,
        title=_shown(title) if title is not None else instance.external_id,
        attributes=shown,
    )


def cards_for(
    session: Session,
    *,
    user_id: str | None,
    conversation_id: str | None = None,
    limit: int = 5,
    offset: int = 0,
) -> Cards:
    """The newest ``limit`` instances (after ``offset``) linked to the end user or the
    conversation, as cards, and how many are linked in all (0 past the last page)."""
    rows, total = repository.cards(
        session, user_id=user_id, conversation_id=conversation_id, limit=limit, offset=offset
    )
    return Cards([card_of(r.instance, r.object_type) for r in rows], total)


# --- bulk import -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)


def check_row(object_type: ObjectType, raw: Any, *, now: datetime) -> dict[str, Any]:
    """One row of an import (the API's request body) as the table's values, or ``ValueError``
    saying what is wrong."""
    try:
        body = _INSTANCE_IN.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "row"
        raise ValueError(f"{where}: {first['msg']}") from None
    try:
        values = checked_values(object_type, body.custom_attributes or {})
    except Invalid as exc:
        raise ValueError(exc.detail) from None
    return {
        "id": ids.new_id(ids.OBJECT_INSTANCE),
        "type_id": object_type.id,
        "external_id": body.external_id,
        "custom_attributes": {k: v for k, v in values.items() if v is not None},
        "external_created_at": _from_unix(body.external_created_at),
        "external_updated_at": _from_unix(body.external_updated_at),
        "created_at": now,
        "updated_at": now,
        "intercom_pending": object_type.mirror_to_intercom,
    }


def upsert_rows(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Checked rows (``check_row``) inserted or updated in one statement; a later row with the
    same external id wins."""
    unique = {row["external_id"]: row for row in rows}
    repository.upsert_many(session, list(unique.values()))
    if any(row.get("intercom_pending") for row in unique.values()):
        mirror_requested.mark(session)
