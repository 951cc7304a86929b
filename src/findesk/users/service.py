"""End-user actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from findesk.conversations import repository as conversation_repository
from findesk.conversations.service import changed
from findesk.kit.actor import Actor
from findesk.kit.attributes import check_attribute_keys, drop_nulls, merge_attributes
from findesk.kit.db import insert_once
from findesk.kit.errors import NotFound
from findesk.kit.schemas import check_email, check_http_url
from findesk.kit.text import NAME_MAX, clean_text, invalid
from findesk.kit.timeutil import utcnow
from findesk.users import repository
from findesk.users.models import EndUser


def get_user(session: Session, user_id: str) -> EndUser:
    user = repository.get(session, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.")
    return user


def create_user(
    session: Session,
    *,
    object_id: str | None,
    name: str | None = None,
    email: str | None = None,
    photo_url: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> tuple[EndUser, bool]:
    """Create an end user; a repeat with the same ``object_id`` returns the first one."""
    check_attribute_keys(attributes)
    user = EndUser(
        object_id=object_id,
        name=_checked_name(name),
        email=_checked("email", email),
        photo_url=_checked("photo_url", photo_url),
        attributes=drop_nulls(attributes or {}),
    )
    if object_id is None:
        session.add(user)
        session.flush()
        return user, True
    return insert_once(session, user, lambda: repository.get_by_object_id(session, object_id))


def _checked_name(name: str | None) -> str | None:
    if name is None:
        return None
    return clean_text(name, field="name", max_length=NAME_MAX, label="The user's name")


def _checked(field: str, value: str | None) -> str | None:
    """An email address or a photo URL, held to the same rules as in the API's schema."""
    try:
        return check_email(value) if field == "email" else check_http_url(value)
    except ValueError as exc:
        raise invalid(f"The user's {field}: {exc}.", field=field) from None


def update_user(session: Session, user_id: str, changes: dict[str, Any], actor: Actor) -> EndUser:
    """Partial update: only the keys in ``changes``; attributes merge key by key."""
    user = get_user(session, user_id)
    dirty = False
    checked = {
        "name": _checked_name(changes.get("name")),
        "email": _checked("email", changes.get("email")),
        "photo_url": _checked("photo_url", changes.get("photo_url")),
    }
    for field, value in checked.items():
        if field in changes and getattr(user, field) != value:
            setattr(user, field, value)
            dirty = True
    if "attributes" in changes:
        check_attribute_keys(changes["attributes"])
        merged = merge_attributes(user.attributes, changes["attributes"])
        if merged != user.attributes:
            user.attributes = merged
            dirty = True
    if dirty:
        user.updated_at = utcnow()
        for conversation_id in conversation_repository.open_ids_of_user(session, user.id):
            changed(session, conversation_id, "user", actor)
    return user
