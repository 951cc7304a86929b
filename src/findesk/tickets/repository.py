"""All the SQL of tickets, ticket types and ticket states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from findesk.tickets.models import Ticket, TicketState, TicketType


def ticket_types(session: Session, *, include_archived: bool = True) -> Sequence[TicketType]:
    statement = select(TicketType).order_by(TicketType.name, TicketType.id)
    if not include_archived:
        statement = statement.where(TicketType.archived.is_(False))
    return session.scalars(statement).all()


def get_type(session: Session, ticket_type_id: str) -> TicketType | None:
    return session.get(TicketType, ticket_type_id)


def type_named(session: Session, name: str) -> TicketType | None:
    return session.scalars(select(TicketType).where(TicketType.name == name)).first()


def states(session: Session) -> Sequence[TicketState]:
    return session.scalars(select(TicketState).order_by(TicketState.position)).all()


def get_state(session: Session, state_id: str) -> TicketState | None:
    return session.get(TicketState, state_id)


def first_state(session: Session) -> TicketState:
    return session.scalars(select(TicketState).order_by(TicketState.position).limit(1)).one()


def get(session: Session, ticket_id: str) -> Ticket | None:
    return session.get(Ticket, ticket_id)


def get_for_update(session: Session, ticket_id: str) -> Ticket | None:
    """The ticket, its row locked on PostgreSQL: concurrent changes of one ticket serialise."""
    found = session.scalars(
        select(Ticket.id).where(Ticket.id == ticket_id).with_for_update()
    ).first()
    if found is None:
        return None
    return session.get(Ticket, ticket_id, populate_existing=True)


def of_conversation(session: Session, conversation_id: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.conversation_id == conversation_id)).first()


def linked_to(session: Session, tracker_id: str) -> Sequence[Ticket]:
    """The tickets linked to a tracker ticket, oldest first."""
    statement = select(Ticket).where(Ticket.tracker_id == tracker_id).order_by(Ticket.number)
    return session.scalars(statement).all()


def next_number(session: Session) -> int:
    """The next short number. On PostgreSQL a transaction-scoped advisory lock makes concurrent
    creations take turns (SQLite has one writer at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7317001)"))
    current = session.scalar(select(func.max(Ticket.number)))
    return (current or 0) + 1


def page(
    session: Session,
    *,
    state_id: str | None,
    ticket_type_id: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[Ticket], int]:
    """Newest change first, and how many match in all."""
    statement = select(Ticket)
    if state_id is not None:
        statement = statement.where(Ticket.state_id == state_id)
    if ticket_type_id is not None:
        statement = statement.where(Ticket.ticket_type_id == ticket_type_id)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(
        statement.order_by(Ticket.updated_at.desc(), Ticket.id.desc()).offset(offset).limit(limit)
    ).all()
    return rows, total


def of_conversations(session: Session, conversation_ids: Sequence[str]) -> Sequence[Ticket]:
    """The tickets of these conversations (each has at most one), in one query."""
    if not conversation_ids:
        return []
    return session.scalars(
        select(Ticket).where(Ticket.conversation_id.in_(list(conversation_ids)))
    ).all()


def move_user(session: Session, from_user_id: str, to_user_id: str, now: datetime) -> None:
    """The tickets of one end user, another's instead (a visitor merged into a user)."""
    session.execute(
        update(Ticket)
        .where(Ticket.user_id == from_user_id)
        .values(user_id=to_user_id, updated_at=now)
    )


def attribute_names(session: Session) -> set[str]:
    """The names of the attributes of every ticket type (archived ones too: tickets keep them)."""
    return {
        attribute["name"]
        for ticket_type in ticket_types(session)
        for attribute in ticket_type.attributes
    }
