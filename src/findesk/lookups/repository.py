"""All the SQL of lookups: definitions, tokens, calls, and the reads a lookup makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select, true
from sqlalchemy.orm import Session, lazyload

from findesk.lookups.models import Lookup, LookupCall, LookupToken
from findesk.objects.models import ObjectInstance, ObjectType, ObjectUserLink
from findesk.tickets.models import Ticket, TicketState

LOOKUPS_MAX = 500
TOKENS_MAX = 100


# --- definitions ------------------------------------------------------------------------------


def list_lookups(session: Session) -> Sequence[Lookup]:
    return session.scalars(select(Lookup).order_by(Lookup.name).limit(LOOKUPS_MAX)).all()


def enabled_lookups(session: Session) -> Sequence[Lookup]:
    statement = select(Lookup).where(Lookup.enabled.is_(True)).order_by(Lookup.name)
    return session.scalars(statement.limit(LOOKUPS_MAX)).all()


def get(session: Session, lookup_id: str) -> Lookup | None:
    return session.get(Lookup, lookup_id)


def by_name(session: Session, name: str) -> Lookup | None:
    return session.scalars(select(Lookup).where(Lookup.name == name)).first()


def object_type(session: Session, type_id: str) -> ObjectType | None:
    return session.get(ObjectType, type_id)


def object_type_by_identifier(session: Session, identifier: str) -> ObjectType | None:
    return session.scalars(select(ObjectType).where(ObjectType.identifier == identifier)).first()


def delete_lookup(session: Session, lookup: Lookup) -> None:
    session.execute(delete(LookupCall).where(LookupCall.lookup_id == lookup.id))
    session.delete(lookup)


# --- tokens -----------------------------------------------------------------------------------


def tokens_of(session: Session, lookup_id: str) -> Sequence[LookupToken]:
    statement = (
        select(LookupToken)
        .where(LookupToken.lookup_id == lookup_id)
        .order_by(LookupToken.created_at.desc())
        .limit(TOKENS_MAX)
    )
    return session.scalars(statement).all()


def token(session: Session, token_id: str) -> LookupToken | None:
    return session.get(LookupToken, token_id)


def token_by_hash(session: Session, token_hash: str) -> LookupToken | None:
    return session.scalars(select(LookupToken).where(LookupToken.token_hash == token_hash)).first()


# --- calls ------------------------------------------------------------------------------------


def add_call(session: Session, **values: Any) -> None:
    session.add(LookupCall(**values))


def delete_calls_before(session: Session, lookup_id: str, before: datetime) -> int:
    """Forget the lookup's calls made before ``before`` (by ``ix_lookup_calls_lookup_at``)."""
    result = session.execute(
        delete(LookupCall).where(LookupCall.lookup_id == lookup_id, LookupCall.at < before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def counted_since(session: Session, lookup_id: str, since: datetime, cap: int) -> int:
    """How many counted calls the lookup had since ``since``, counting no further than ``cap``
    (the index ``ix_lookup_calls_rate`` gives them in order; the count stops there)."""
    recent = (
        select(LookupCall.id)
        .where(
            LookupCall.lookup_id == lookup_id,
            LookupCall.counted == true(),  # (`= true`: an index condition; `IS true` is not)
            LookupCall.at >= since,
        )
        .limit(cap)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(recent)) or 0)


def nth_newest_counted(
    session: Session, lookup_id: str, since: datetime, n: int
) -> datetime | None:
    """The time of the lookup's ``n``-th newest counted call since ``since``: when it leaves the
    window, one more call fits."""
    statement = (
        select(LookupCall.at)
        .where(
            LookupCall.lookup_id == lookup_id,
            LookupCall.counted == true(),  # (`= true`: an index condition; `IS true` is not)
            LookupCall.at >= since,
        )
        .order_by(LookupCall.at.desc())
        .offset(n - 1)
        .limit(1)
    )
    return session.scalar(statement)


def lock_lookup(session: Session, lookup_id: str) -> None:
    """Serialise this lookup's callers until the transaction ends (PostgreSQL; on SQLite the
    write transaction already is alone)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Lookup.id).where(Lookup.id == lookup_id).with_for_update())


def recent_calls(session: Session, lookup_id: str, limit: int) -> Sequence[LookupCall]:
    statement = (
        select(LookupCall)
        .where(LookupCall.lookup_id == lookup_id)
        .order_by(LookupCall.at.desc(), LookupCall.id.desc())
        .limit(limit)
    )
    return session.scalars(statement).all()


def call_stats(session: Session, since: datetime) -> dict[str, tuple[int, int, datetime | None]]:
    """Per lookup: calls since ``since``, how many of them failed (status 400 and up), and the
    time of the newest."""
    statement = (
        select(
            LookupCall.lookup_id,
            func.count(),
            func.sum(case((LookupCall.status_code >= 400, 1), else_=0)),
            func.max(LookupCall.at),
        )
        .where(LookupCall.at >= since)
        .group_by(LookupCall.lookup_id)
    )
    return {
        row[0]: (int(row[1]), int(row[2] or 0), row[3]) for row in session.execute(statement).all()
    }


# --- the reads a lookup makes -----------------------------------------------------------------


def _linked_to(user_id: str) -> ColumnElement[bool]:
    return ObjectInstance.id.in_(
        select(ObjectUserLink.instance_id).where(ObjectUserLink.user_id == user_id)
    )


def instance_by_external_id(
    session: Session, type_id: str, external_id: str
) -> ObjectInstance | None:
    """By the unique index ``uq_custom_object_instances_external`` (without the type, which the
    caller has: the model joins it by default)."""
    statement = (
        select(ObjectInstance)
        .options(lazyload(ObjectInstance.object_type))
        .where(ObjectInstance.type_id == type_id, ObjectInstance.external_id == external_id)
    )
    return session.scalars(statement).first()


def user_is_linked(session: Session, instance_id: str, user_id: str) -> bool:
    return session.get(ObjectUserLink, (user_id, instance_id)) is not None


def instances_by_attribute(
    session: Session,
    type_id: str,
    attribute: str,
    attribute_type: str,
    value: Any,
    *,
    user_id: str | None,
    limit: int,
) -> Sequence[ObjectInstance]:
    """The newest ``limit`` instances of the type whose attribute equals ``value`` (compared as
    the attribute's type: JSON keeps integers and booleans as such)."""
    element = ObjectInstance.custom_attributes[attribute]
    compared: ColumnElement[bool]
    if attribute_type == "integer":
        compared = element.as_integer() == int(value)
    elif attribute_type == "boolean":
        compared = element.as_boolean() == bool(value)
    else:  # string, decimal (stored as a string), date, datetime
        compared = element.as_string() == str(value)
    conditions: list[ColumnElement[bool]] = [ObjectInstance.type_id == type_id, compared]
    if user_id is not None:
        conditions.append(_linked_to(user_id))
    statement = (
        select(ObjectInstance)
        .options(lazyload(ObjectInstance.object_type))
        .where(*conditions)
        .order_by(ObjectInstance.created_at.desc(), ObjectInstance.id.desc())
        .limit(limit)
    )
    return session.scalars(statement).all()


def open_tickets_of(session: Session, user_id: str, limit: int) -> Sequence[Ticket]:
    statement = (
        select(Ticket)
        .join(TicketState, Ticket.state_id == TicketState.id)
        .where(Ticket.user_id == user_id, TicketState.category != "resolved")
        .order_by(Ticket.updated_at.desc())
        .limit(limit)
    )
    return session.scalars(statement).unique().all()


def ticket_of_conversation(session: Session, conversation_id: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.conversation_id == conversation_id)).first()
