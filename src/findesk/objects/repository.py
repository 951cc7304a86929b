"""All the SQL of custom objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from findesk.objects.models import (
    IntercomObjectDelete,
    ObjectConversationLink,
    ObjectInstance,
    ObjectType,
    ObjectUserLink,
)

TYPES_MAX = 1000


def list_types(session: Session) -> Sequence[ObjectType]:
    statement = select(ObjectType).order_by(ObjectType.identifier).limit(TYPES_MAX)
    return session.scalars(statement).all()


def type_by_identifier(session: Session, identifier: str) -> ObjectType | None:
    return session.scalars(select(ObjectType).where(ObjectType.identifier == identifier)).first()


def instance_counts(session: Session, type_ids: Sequence[str]) -> dict[str, int]:
    if not type_ids:
        return {}
    statement = (
        select(ObjectInstance.type_id, func.count())
        .where(ObjectInstance.type_id.in_(type_ids))
        .group_by(ObjectInstance.type_id)
    )
    return {type_id: count for type_id, count in session.execute(statement)}


def instance_by_id(session: Session, type_id: str, instance_id: str) -> ObjectInstance | None:
    return session.scalars(
        select(ObjectInstance).where(
            ObjectInstance.type_id == type_id, ObjectInstance.id == instance_id
        )
    ).first()


def instance_by_external_id(
    session: Session, type_id: str, external_id: str, *, lock: bool = False
) -> ObjectInstance | None:
    statement = select(ObjectInstance).where(
        ObjectInstance.type_id == type_id, ObjectInstance.external_id == external_id
    )
    if lock:
        statement = statement.with_for_update()
    return session.scalars(statement).first()


def _referenced(
    type_id: str, contact_id: str | None, conversation_id: str | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [ObjectInstance.type_id == type_id]
    if contact_id is not None:
        conditions.append(
            ObjectInstance.id.in_(
                select(ObjectUserLink.instance_id).where(ObjectUserLink.user_id == contact_id)
            )
        )
    if conversation_id is not None:
        conditions.append(
            ObjectInstance.id.in_(
                select(ObjectConversationLink.instance_id).where(
                    ObjectConversationLink.conversation_id == conversation_id
                )
            )
        )
    return conditions


def list_instances(
    session: Session,
    type_id: str,
    *,
    contact_id: str | None,
    conversation_id: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[ObjectInstance], int]:
    """A page, newest first, and how many there are in all."""
    conditions = _referenced(type_id, contact_id, conversation_id)
    total = session.scalar(select(func.count()).select_from(ObjectInstance).where(*conditions))
    rows = session.scalars(
        select(ObjectInstance)
        .where(*conditions)
        .order_by(ObjectInstance.created_at.desc(), ObjectInstance.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return rows, int(total or 0)


def has_user_link(session: Session, instance_id: str, user_id: str) -> bool:
    return session.get(ObjectUserLink, (user_id, instance_id)) is not None


def has_conversation_link(session: Session, instance_id: str, conversation_id: str) -> bool:
    return session.get(ObjectConversationLink, (conversation_id, instance_id)) is not None


def unlink_user(session: Session, instance_id: str, user_id: str) -> None:
    session.execute(
        delete(ObjectUserLink).where(
            ObjectUserLink.instance_id == instance_id, ObjectUserLink.user_id == user_id
        )
    )


def unlink_conversation(session: Session, instance_id: str, conversation_id: str) -> None:
    session.execute(
        delete(ObjectConversationLink).where(
            ObjectConversationLink.instance_id == instance_id,
            ObjectConversationLink.conversation_id == conversation_id,
        )
    )


@dataclass(frozen=True)
class CardRow:
    instance: ObjectInstance
    object_type: ObjectType


def cards(
    session: Session,
    *,
    user_id: str | None,
    conversation_id: str | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[CardRow], int]:
    """The newest ``limit`` instances linked to the end user or the conversation, and how many
    there are in all: one query (a window count), whatever the number of links."""
    parts = []
    if user_id is not None:
        parts.append(select(ObjectUserLink.instance_id).where(ObjectUserLink.user_id == user_id))
    if conversation_id is not None:
        parts.append(
            select(ObjectConversationLink.instance_id).where(
                ObjectConversationLink.conversation_id == conversation_id
            )
        )
    if not parts:
        return [], 0
    linked = union(*parts) if len(parts) > 1 else parts[0]
    statement = (
        # The type comes with each instance (its eager join).
        select(ObjectInstance, func.count().over().label("total"))
        .where(ObjectInstance.id.in_(linked))
        .order_by(ObjectInstance.created_at.desc(), ObjectInstance.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = session.execute(statement).all()
    total = int(rows[0][1]) if rows else 0
    return [CardRow(instance, instance.object_type) for instance, _ in rows], total


def upsert_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or update those whose (type, external id) exists: one ``INSERT … ON
    CONFLICT DO UPDATE`` run with many parameter sets. The rows must not repeat an external id
    (PostgreSQL refuses to update a row twice in one statement)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ObjectInstance)
    statement = statement.on_conflict_do_update(
        index_elements=[ObjectInstance.type_id, ObjectInstance.external_id],
        set_={
            "custom_attributes": statement.excluded.custom_attributes,
            "external_created_at": statement.excluded.external_created_at,
            "external_updated_at": statement.excluded.external_updated_at,
            "updated_at": statement.excluded.updated_at,
            "intercom_pending": statement.excluded.intercom_pending,
        },
    )
    session.execute(statement, rows)


def move_user_links(session: Session, from_user_id: str, to_user_id: str) -> None:
    """The objects linked to one end user, linked to another instead (a visitor merged into a
    user); those linked to both already stay linked once."""
    theirs = select(ObjectUserLink.instance_id).where(ObjectUserLink.user_id == to_user_id)
    session.execute(
        delete(ObjectUserLink).where(
            ObjectUserLink.user_id == from_user_id, ObjectUserLink.instance_id.in_(theirs)
        )
    )
    session.execute(
        update(ObjectUserLink)
        .where(ObjectUserLink.user_id == from_user_id)
        .values(user_id=to_user_id)
    )


# --- Intercom's copy (objects.mirror) --------------------------------------------------------


def mark_type_pending(session: Session, type_id: str) -> None:
    """Every instance of a type waits to be sent to Intercom."""
    session.execute(
        update(ObjectInstance)
        .where(ObjectInstance.type_id == type_id)
        .values(intercom_pending=True, intercom_attempts=0, intercom_next_attempt_at=None)
    )


def add_intercom_delete(session: Session, type_identifier: str, external_id: str) -> None:
    """A tombstone: Intercom's copy of this instance is to be deleted."""
    session.merge(
        IntercomObjectDelete(
            type_identifier=type_identifier,
            external_id=external_id,
            attempts=0,
            next_attempt_at=None,
            error=None,
        )
    )


def mirror_candidates(
    session: Session, *, due_before: datetime | None, everything: bool, limit: int
) -> list[str]:
    """Ids of the instances of mirrored types to look at: the pending ones (whose retry is due
    before ``due_before``, when given), or with ``everything`` all of them."""
    query = (
        select(ObjectInstance.id)
        .join(ObjectType, ObjectType.id == ObjectInstance.type_id)
        .where(ObjectType.mirror_to_intercom.is_(True))
    )
    if not everything:
        query = query.where(ObjectInstance.intercom_pending.is_(True))
        if due_before is not None:
            query = query.where(
                (ObjectInstance.intercom_next_attempt_at.is_(None))
                | (ObjectInstance.intercom_next_attempt_at <= due_before)
            )
    return list(session.scalars(query.order_by(ObjectInstance.id).limit(limit)))


def instance_for_update(session: Session, instance_id: str) -> ObjectInstance | None:
    return session.scalars(
        select(ObjectInstance).where(ObjectInstance.id == instance_id).with_for_update()
    ).one_or_none()


def intercom_deletes(
    session: Session, *, due_before: datetime | None, limit: int
) -> Sequence[IntercomObjectDelete]:
    query = select(IntercomObjectDelete)
    if due_before is not None:
        query = query.where(
            (IntercomObjectDelete.next_attempt_at.is_(None))
            | (IntercomObjectDelete.next_attempt_at <= due_before)
        )
    return session.scalars(query.order_by(IntercomObjectDelete.created_at).limit(limit)).all()


def intercom_delete_for_update(
    session: Session, type_identifier: str, external_id: str
) -> IntercomObjectDelete | None:
    return session.scalars(
        select(IntercomObjectDelete)
        .where(
            IntercomObjectDelete.type_identifier == type_identifier,
            IntercomObjectDelete.external_id == external_id,
        )
        .with_for_update()
    ).one_or_none()


def instance_exists(session: Session, type_identifier: str, external_id: str) -> bool:
    found = session.scalar(
        select(ObjectInstance.id)
        .join(ObjectType, ObjectType.id == ObjectInstance.type_id)
        .where(ObjectType.identifier == type_identifier, ObjectInstance.external_id == external_id)
    )
    return found is not None


def earliest_mirror_retry(session: Session) -> datetime | None:
    instances = session.scalar(
        select(func.min(ObjectInstance.intercom_next_attempt_at)).where(
            ObjectInstance.intercom_pending.is_(True)
        )
    )
    deletes = session.scalar(select(func.min(IntercomObjectDelete.next_attempt_at)))
    found = [d for d in (instances, deletes) if d is not None]
    return min(found) if found else None


@dataclass(frozen=True)
class LinkedValues:
    """An instance of a type linked to an end user or a conversation (``owner_id``): what a
    routing condition compares."""

    owner_id: str
    type_identifier: str
    type_attributes: list[dict[str, Any]]
    external_id: str
    custom_attributes: dict[str, Any]


def linked_values(
    session: Session,
    type_identifiers: Sequence[str],
    *,
    conversation_ids: Sequence[str],
    user_ids: Sequence[str],
) -> list[LinkedValues]:
    """The instances of these types linked to these conversations or end users: two queries,
    whatever the number of conversations, users or links."""
    if not type_identifiers:
        return []
    columns = (
        ObjectType.identifier,
        ObjectType.attributes,
        ObjectInstance.external_id,
        ObjectInstance.custom_attributes,
    )
    found: list[LinkedValues] = []
    for link, owner, owners in (
        (ObjectConversationLink, ObjectConversationLink.conversation_id, conversation_ids),
        (ObjectUserLink, ObjectUserLink.user_id, user_ids),
    ):
        if not owners:
            continue
        statement = (
            select(owner, *columns)
            .select_from(link)
            .join(ObjectInstance, ObjectInstance.id == link.instance_id)
            .join(ObjectType, ObjectType.id == ObjectInstance.type_id)
            .where(owner.in_(list(owners)), ObjectType.identifier.in_(list(type_identifiers)))
        )
        found += [LinkedValues(*row) for row in session.execute(statement)]
    return found
