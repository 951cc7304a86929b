"""End-user actions: create, update, and turn a visitor into a user (``convert_visitor``,
``merge_into``).

A visitor is an end user without an email (``EndUser.role``). Merging one into a user moves
its conversations and messages, keeps its ids as aliases (``EndUserAlias``) so that every id
Fin already holds still resolves, and deletes it, in one transaction with the events Fin must
hear about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations.service import changed
from findesk.kit.actor import Actor
from findesk.kit.attributes import check_attribute_keys, drop_nulls, merge_attributes
from findesk.kit.db import insert_once
from findesk.kit.errors import Conflict, NotFound
from findesk.kit.schemas import check_email, check_http_url
from findesk.kit.text import NAME_MAX, clean_text, invalid
from findesk.kit.timeutil import utcnow
from findesk.objects import repository as object_repository
from findesk.tickets import repository as ticket_repository
from findesk.users import repository
from findesk.users.models import EndUser


def get_user(session: Session, user_id: str) -> EndUser:
    """The end user with this id, or the one it was merged into (Fin keeps the old id)."""
    user = repository.get_resolving_alias(session, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.")
    return user


def current_id(session: Session, user_id: str) -> str:
    """The id an end user answers to now: its own, or that of the user it was merged into."""
    if repository.get(session, user_id) is not None:
        return user_id
    return repository.alias_target_id(session, "id", user_id) or user_id


def create_user(
    session: Session,
    *,
    object_id: str | None,
    name: str | None = None,
    email: str | None = None,
    photo_url: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> tuple[EndUser, bool]:
    """Create an end user; a repeat with the same ``object_id`` returns the first one (or the
    user it was merged into since)."""
    check_attribute_keys(attributes)
    if object_id is not None and (merged := repository.aliased(session, "object_id", object_id)):
        return merged, False
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


@dataclass(frozen=True)
class UserRef:
    """How a request names an end user (Intercom's convert-visitor payload): our ``id``, the
    ``user_id`` it is known by outside findesk (its ``object_id``) or its ``email``; the first
    one given counts, except that a ``user_id`` no end user has falls back to the email."""

    id: str | None = None
    user_id: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Merged:
    user: EndUser
    moved_conversation_ids: list[str]
    # The open conversations Fin was told about (their end user changed).
    notified_conversation_ids: list[str]


def merge_into(session: Session, visitor: EndUser, user: EndUser, actor: Actor) -> Merged:
    """Merge ``visitor`` (any end user but ``user``; a visitor in practice) into ``user``, who
    must have an email: its conversations, the messages it wrote, its tickets and the objects
    linked to it move to ``user``, its attributes, name and photo fill what ``user`` has not
    (never overwriting), its ids become aliases of ``user`` (and so do the aliases it had), and
    it is deleted. Each moved conversation records a ``merge`` in its history; Fin hears of every
    affected open one."""
    if visitor.id == user.id:
        raise invalid("An end user cannot be merged into itself.", field="visitor")
    if user.role == "visitor":
        raise invalid("Merge into a user who has an email, not into another visitor.", field="user")
    repository.lock(session, [visitor.id, user.id])
    now = utcnow()
    moved = list(conversation_repository.of_user_for_update(session, visitor.id))
    for conversation in moved:
        conversation.user = user
        conversation.updated_at = now
        history.record(
            session,
            conversation.id,
            "merge",
            actor,
            from_value=visitor.id,
            to_value=user.id,
            detail={"from_name": visitor.name, "to_name": user.name or user.email},
        )
    conversation_repository.move_authored_messages(session, visitor.id, user.id)
    object_repository.move_user_links(session, visitor.id, user.id)
    ticket_repository.move_user(session, visitor.id, user.id, now)
    merged_attributes = {**(visitor.attributes or {}), **(user.attributes or {})}
    dirty = merged_attributes != (user.attributes or {})
    if dirty:
        user.attributes = merged_attributes
    for field in ("name", "photo_url"):
        if getattr(user, field) is None and getattr(visitor, field) is not None:
            setattr(user, field, getattr(visitor, field))
            dirty = True
    if dirty or moved:
        user.updated_at = now
    repository.repoint_aliases(session, visitor.id, user.id)
    aliases = [("id", visitor.id)]
    if visitor.object_id is not None:
        aliases.append(("object_id", visitor.object_id))
    session.flush()  # the moves, before the row they referred to goes
    session.delete(visitor)
    repository.add_aliases(session, user.id, aliases)
    # Fin reads the end user with each conversation: tell it about every open one that moved,
    # and, when the user's own fields changed, about the user's other open ones too.
    moved_ids = [c.id for c in moved]
    notify = [c.id for c in moved if c.status == "open"]
    if dirty:
        notify += [
            cid
            for cid in conversation_repository.open_ids_of_user(session, user.id)
            if cid not in notify
        ]
    by_id = {c.id: c for c in moved}
    for conversation_id in notify:
        changed(session, conversation_id, "user", actor, by_id.get(conversation_id))
    return Merged(user, moved_ids, notify)


@dataclass(frozen=True)
class Converted:
    user: EndUser
    merged: Merged | None  # None: the visitor became the user itself


def convert_visitor(
    session: Session, visitor_ref: UserRef, user_ref: UserRef, actor: Actor
) -> Converted:
    """Intercom's convert visitor: into the user ``user_ref`` names if there is one (a merge,
    ``merge_into``), otherwise the visitor becomes that user (it takes the email, and the
    ``user_id`` as its object_id, the old one kept as an alias). A repeat, naming the visitor
    by an id it had before it was merged into that same user, answers the user again."""
    visitor = _find(session, visitor_ref, "visitor")
    if visitor is None:
        raise NotFound("No visitor matches the given identifiers.")
    user = _find(session, user_ref, "user")
    itself = user is not None and user.id == visitor.id
    if itself and visitor.role == "user":
        return Converted(visitor, None)  # done before
    if visitor.role != "visitor":
        raise invalid(
            f"The end user {visitor.id!r} has an email: a user already, not a visitor.",
            field="visitor",
        )
    if user is not None and not itself:
        return Converted(user, merge_into(session, visitor, user, actor))
    # No such user (or the visitor itself): the visitor becomes the user.
    if user_ref.email is None:
        if user is None and user_ref.id is not None and user_ref.user_id is None:
            raise NotFound(f"No user with id {user_ref.id!r}.")
        raise invalid(
            "No such user: give the user's email to make the visitor that user.",
            field="user.email",
        )
    return Converted(_become_user(session, visitor, user_ref, actor), None)


def _find(session: Session, ref: UserRef, field: str) -> EndUser | None:
    if ref.id is not None:
        return repository.get_resolving_alias(session, ref.id)
    if ref.user_id is not None:
        found = repository.get_by_object_id_resolving_alias(session, ref.user_id)
        if found is not None or ref.email is None:
            return found
    if ref.email is not None:
        email = _checked("email", ref.email)
        assert email is not None
        users = repository.by_email(session, email)
        if len(users) > 1:
            raise Conflict(f"Several end users have the email {email!r}: name the {field} by id.")
        return users[0] if users else None
    raise invalid(f"Name the {field} by id, user_id or email.", field=field)


def _become_user(session: Session, visitor: EndUser, ref: UserRef, actor: Actor) -> EndUser:
    visitor.email = _checked("email", ref.email)
    if ref.user_id is not None and ref.user_id != visitor.object_id:
        if visitor.object_id is not None:  # Fin's create_user with it still finds this one
            repository.add_aliases(session, visitor.id, [("object_id", visitor.object_id)])
        visitor.object_id = ref.user_id
    visitor.updated_at = utcnow()
    for conversation_id in conversation_repository.open_ids_of_user(session, visitor.id):
        changed(session, conversation_id, "user", actor)
    return visitor


def merge_end_user(
    session: Session,
    source_id: str,
    *,
    into_id: str | None = None,
    into_email: str | None = None,
    actor: Actor,
) -> Merged:
    """The inbox's "Merge into…": the end user ``source_id`` (a visitor, or a duplicate of a
    user) into the user with this id or email, who must exist (``merge_into``)."""
    source = get_user(session, source_id)
    if into_id:
        target = repository.get_resolving_alias(session, into_id)
        if target is None:  # (a form's error, not a missing page)
            raise invalid(f"No user with id {into_id!r}.", field="user_id")
    elif into_email and into_email.strip():
        email = _checked("email", into_email)
        assert email is not None
        found = [u for u in repository.by_email(session, email, limit=3) if u.id != source.id]
        if not found:
            raise invalid(f"No other user has the email {email}.", field="email")
        if len(found) > 1:
            raise Conflict(f"Several users have the email {email}: merge from a suggestion.")
        target = found[0]
    else:
        raise invalid("Give the email of the user to merge into.", field="email")
    return merge_into(session, source, target, actor)


def merge_suggestions(session: Session, user: EndUser, limit: int = 3) -> list[EndUser]:
    """Users this end user may be a duplicate of: another with the same email, or, for a
    visitor with a name, a user of the same name (exact, as Fin collected it)."""
    if user.email:
        found = repository.by_email(session, user.email, limit=limit + 1)
    elif user.name:
        found = repository.by_name(session, user.name, limit=limit + 1)
    else:
        return []
    return [u for u in found if u.id != user.id][:limit]
