"""Tickets: one function per action. Services never commit.

Errors are Intercom's: the problem's ``code`` is Intercom's error code (``parameter_invalid``,
``parameter_not_found``, ``not_found``, ``conflict``) and its ``errors`` hold Intercom's
``{code, message, field}``, so that a script that reads ``errors[0].code`` ports over.

Fin hears of a ticket through its conversation: on conversion and on every state change the
conversation's ``ticket`` attribute (``fin_attribute``) is set through
``conversations.service.merge_conversation_attributes``, which records the change for Fin and
the history, and a ``ticket`` history row says what happened.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit import ids
from findesk.kit.actor import Actor
from findesk.kit.errors import Forbidden, Problem
from findesk.kit.text import text_problem
from findesk.kit.timeutil import utcnow
from findesk.tickets import repository
from findesk.tickets.models import (
    DESCRIPTION,
    FIN_ATTRIBUTE,
    TITLE,
    Ticket,
    TicketState,
    TicketType,
)
from findesk.tickets.schemas import (
    ATTRIBUTES_MAX,
    ListItemIn,
    TicketTypeAttributeIn,
    TicketTypeAttributeUpdate,
    TicketTypeCreate,
    TicketTypeUpdate,
)
from findesk.users import repository as user_repository

STRING_MAX = 65_535


def intercom_error(status: int, code: str, message: str, field: str | None = None) -> Problem:
    error = {"code": code, "message": message, "field": field}
    return Problem(message, status=status, code=code, errors=[error])


def _invalid(message: str, field: str | None = None) -> Problem:
    return intercom_error(400, "parameter_invalid", message, field)


def check_admin(agent: Agent) -> None:
    if agent.role != "admin":
        raise Forbidden("Only administrators may change ticket types.")


# --- ticket types -----------------------------------------------------------------------------


def _default_attributes(ticket_type_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{ticket_type_id}_title",
            "name": TITLE,
            "description": "The ticket's title.",
            "data_type": "string",
            "required_to_create": True,
            "visible_to_contacts": True,
            "default": True,
            "archived": False,
            "list_items": None,
        },
        {
            "id": f"{ticket_type_id}_description",
            "name": DESCRIPTION,
            "description": "What the ticket is about.",
            "data_type": "string",
            "required_to_create": False,
            "visible_to_contacts": True,
            "default": True,
            "archived": False,
            "list_items": None,
        },
    ]


def _list_items(
    items: list[ListItemIn] | None, current: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Stable ids: an item sent with a known id keeps it; a new one gets a uuid, as Intercom's
    are; a known item left out stays, archived (tickets may still hold its id)."""
    known = {item["id"]: item for item in current or []}
    kept: list[dict[str, Any]] = []
    for item in items or []:
        if item.id is not None and item.id not in known:
            raise _invalid(f"No list item with id {item.id!r}.", "list_items")
        kept.append(
            {"id": item.id or str(uuid.uuid4()), "label": item.label, "archived": item.archived}
        )
    if len({item["label"] for item in kept if not item["archived"]}) != len(
        [item for item in kept if not item["archived"]]
    ):
        raise _invalid("List items must have different labels.", "list_items")
    sent = {item["id"] for item in kept}
    kept += [{**item, "archived": True} for item in current or [] if item["id"] not in sent]
    return kept


def _new_attribute(ticket_type: TicketType, body: TicketTypeAttributeIn) -> dict[str, Any]:
    if body.name.startswith("_default_") or any(
        a["name"] == body.name for a in ticket_type.attributes
    ):
        raise _invalid(f"The ticket type already has an attribute {body.name!r}.", "name")
    if len(ticket_type.attributes) >= ATTRIBUTES_MAX + 2:
        raise _invalid(f"A ticket type has at most {ATTRIBUTES_MAX} attributes.", "name")
    if body.data_type == "list" and not body.list_items:
        raise _invalid("A list attribute needs list_items.", "list_items")
    if body.data_type != "list" and body.list_items:
        raise _invalid("Only a list attribute has list_items.", "list_items")
    return {
        "id": _new_attribute_id(),
        "name": body.name,
        "description": body.description,
        "data_type": body.data_type,
        "required_to_create": body.required_to_create,
        "visible_to_contacts": body.visible_to_contacts,
        "default": False,
        "archived": False,
        "list_items": _list_items(body.list_items) if body.data_type == "list" else None,
    }


def _new_attribute_id() -> str:
    return ids.new_id(ids.TICKET_ATTRIBUTE)


def list_types(session: Session) -> list[TicketType]:
    return list(repository.ticket_types(session))


def get_type(session: Session, ticket_type_id: str) -> TicketType:
    found = repository.get_type(session, ticket_type_id)
    if found is None:
        raise intercom_error(404, "not_found", "Ticket type not found", "ticket_type_id")
    return found


def _check_name(session: Session, name: str, current: TicketType | None = None) -> str:
    name = name.strip()
    if not name:
        raise _invalid("The name must not be blank.", "name")
    other = repository.type_named(session, name)
    if other is not None and other is not current:
        raise _invalid(f"A ticket type is already named {name!r}.", "name")
    return name


def create_type(session: Session, agent: Agent, body: TicketTypeCreate) -> TicketType:
    check_admin(agent)
    now = utcnow()
    ticket_type = TicketType(
        id=ids.new_id(ids.TICKET_TYPE),
        name=_check_name(session, body.name),
        description=body.description,
        icon=body.icon,
        category=body.category,
        archived=False,
        created_at=now,
        updated_at=now,
    )
    ticket_type.attributes = _default_attributes(ticket_type.id)
    for attribute in body.ticket_type_attributes:
        ticket_type.attributes = [*ticket_type.attributes, _new_attribute(ticket_type, attribute)]
    session.add(ticket_type)
    session.flush()
    return ticket_type


def update_type(
    session: Session, agent: Agent, ticket_type_id: str, body: TicketTypeUpdate
) -> TicketType:
    check_admin(agent)
    ticket_type = get_type(session, ticket_type_id)
    if body.name is not None:
        ticket_type.name = _check_name(session, body.name, ticket_type)
    for name in ("description", "icon", "category", "archived"):
        value = getattr(body, name)
        if value is not None:
            setattr(ticket_type, name, value)
    ticket_type.updated_at = utcnow()
    session.flush()
    return ticket_type


def add_attribute(
    session: Session, agent: Agent, ticket_type_id: str, body: TicketTypeAttributeIn
) -> dict[str, Any]:
    check_admin(agent)
    ticket_type = get_type(session, ticket_type_id)
    attribute = _new_attribute(ticket_type, body)
    ticket_type.attributes = [*ticket_type.attributes, attribute]  # a new list: JSON changes
    ticket_type.updated_at = utcnow()
    session.flush()
    return attribute


def update_attribute(
    session: Session,
    agent: Agent,
    ticket_type_id: str,
    attribute_id: str,
    body: TicketTypeAttributeUpdate,
) -> dict[str, Any]:
    check_admin(agent)
    ticket_type = get_type(session, ticket_type_id)
    attributes = [dict(a) for a in ticket_type.attributes]
    found = next((a for a in attributes if a["id"] == attribute_id), None)
    if found is None:
        raise intercom_error(404, "not_found", "Ticket type attribute not found", "attribute_id")
    if found["default"] and (body.archived or body.list_items is not None):
        raise _invalid("A default attribute cannot be archived or given list items.", "archived")
    if body.list_items is not None:
        if found["data_type"] != "list":
            raise _invalid("Only a list attribute has list_items.", "list_items")
        found["list_items"] = _list_items(body.list_items, found["list_items"])
        if not any(not item["archived"] for item in found["list_items"]):
            raise _invalid("A list attribute needs list_items.", "list_items")
    for name in ("description", "required_to_create", "visible_to_contacts", "archived"):
        value = getattr(body, name)
        if value is not None:
            found[name] = value
    ticket_type.attributes = attributes
    ticket_type.updated_at = utcnow()
    session.flush()
    return found


# --- ticket states ----------------------------------------------------------------------------


def list_states(session: Session) -> list[TicketState]:
    return list(repository.states(session))


def _state(session: Session, state_id: str | None) -> TicketState:
    if state_id is None:
        return repository.first_state(session)
    state = repository.get_state(session, state_id)
    if state is None:
        raise _invalid("Ticket state not found", "ticket_state_id")
    return state


# --- ticket attributes ------------------------------------------------------------------------


def _checked_value(attribute: dict[str, Any], value: Any) -> Any:
    name, data_type = attribute["name"], attribute["data_type"]
    wrong = _invalid(f"Ticket attribute {name!r} must be a {data_type}.", name)
    if data_type == "string":
        if not isinstance(value, str):
            raise wrong
        problem = text_problem(value)
        if problem is not None:
            raise _invalid(f"Ticket attribute {name!r} {problem}.", name)
        if len(value) > STRING_MAX:
            raise _invalid(f"Ticket attribute {name!r} is longer than {STRING_MAX}.", name)
        return value
    if data_type == "number":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise wrong
        return value
    if data_type == "boolean":
        if not isinstance(value, bool):
            raise wrong
        return value
    if data_type == "date":
        if not isinstance(value, str) or not _is_date(value):
            raise _invalid(
                f"Ticket attribute {name!r} must be a date (YYYY-MM-DD or an ISO 8601 date-time).",
                name,
            )
        return value
    # list: the id of one of its items that is not archived
    items = {i["id"] for i in attribute.get("list_items") or [] if not i["archived"]}
    if not isinstance(value, str) or value not in items:
        raise _invalid(f"Ticket attribute {name!r} must be the id of one of its list items.", name)
    return value


def _is_date(value: str) -> bool:
    if len(value) > 64:
        return False
    for parse in (date.fromisoformat, datetime.fromisoformat):
        try:
            parse(value)
        except ValueError:
            continue
        return True
    return False


def checked_attributes(
    ticket_type: TicketType,
    given: dict[str, Any] | None,
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ticket's attributes once ``given`` is merged into ``current`` (None removes one), or
    Intercom's 400: an unknown or archived attribute, a value of the wrong type, a required one
    missing or removed."""
    by_name = {a["name"]: a for a in ticket_type.attributes if not a["archived"]}
    merged = dict(current or {})
    for name, value in (given or {}).items():
        attribute = by_name.get(name)
        if attribute is None:
            raise _invalid(
                f"Ticket attribute {name!r} does not exist on ticket type {ticket_type.name!r}.",
                name,
            )
        if value is None or (isinstance(value, str) and not value.strip()):
            merged.pop(name, None)
        else:
            merged[name] = _checked_value(attribute, value)
    for attribute in by_name.values():
        if attribute["required_to_create"] and attribute["name"] not in merged:
            raise intercom_error(
                400,
                "parameter_not_found",
                f"Ticket attribute {attribute['name']!r} is required.",
                attribute["name"],
            )
    return merged


# --- tickets ----------------------------------------------------------------------------------


def fin_attribute(ticket: Ticket) -> dict[str, Any]:
    """The conversation's ``ticket`` attribute: what Fin may tell the end user (the external
    label, never the internal one)."""
    return {
        "id": ticket.id,
        "ticket_id": str(ticket.number),
        "type": ticket.ticket_type.name,
        "state": ticket.state.external_label,
        "open": ticket.state.category != "resolved",
    }


def _tell_fin(session: Session, ticket: Ticket, actor: Actor) -> None:
    if ticket.conversation_id is None:
        return
    conversation = conversation_repository.get_for_update(session, ticket.conversation_id)
    if conversation is not None:
        conversations.merge_conversation_attributes(
            session, conversation, {FIN_ATTRIBUTE: fin_attribute(ticket)}, actor
        )


def _locked_conversation(session: Session, conversation_id: str) -> Conversation:
    conversation = conversation_repository.get_for_update(session, conversation_id)
    if conversation is None:
        raise intercom_error(404, "not_found", "Conversation not found", "conversation_id")
    return conversation


def convert(
    session: Session,
    conversation_id: str,
    actor: Actor,
    *,
    ticket_type_id: str,
    attributes: dict[str, Any] | None,
    state_id: str | None = None,
) -> Ticket:
    """Make the conversation a ticket of a customer type; the ticket links to it and keeps its
    thread there. A conversation becomes at most one ticket (409)."""
    conversation = _locked_conversation(session, conversation_id)
    ticket_type = repository.get_type(session, ticket_type_id)
    if ticket_type is None:
        raise _invalid("Ticket type not found", "ticket_type_id")
    if ticket_type.category != "Customer":
        raise _invalid("Ticket type is not a customer ticket type", "ticket_type_id")
    if ticket_type.archived:
        raise _invalid("Ticket type is archived", "ticket_type_id")
    if repository.of_conversation(session, conversation.id) is not None:
        raise intercom_error(
            409, "conflict", "Conversation has already been converted to a ticket", "id"
        )
    state = _state(session, state_id)
    now = utcnow()
    ticket = Ticket(
        number=repository.next_number(session),
        ticket_type=ticket_type,
        state=state,
        attributes=checked_attributes(ticket_type, attributes),
        conversation_id=conversation.id,
        user_id=conversation.user_id,
        created_by_id=actor.agent_id,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    history.record(
        session,
        conversation.id,
        "ticket",
        actor,
        to_value=state.internal_label,
        detail={
            "action": "converted",
            "ticket_id": ticket.id,
            "number": ticket.number,
            "type": ticket_type.name,
        },
    )
    _tell_fin(session, ticket, actor)
    return ticket


def create_ticket(
    session: Session,
    actor: Actor,
    *,
    ticket_type_id: str,
    user_id: str | None,
    attributes: dict[str, Any] | None,
    state_id: str | None = None,
) -> Ticket:
    """A ticket without a conversation (Intercom's Create Ticket): of any category; a customer
    ticket is for an end user. No conversation, so no history row and nothing for Fin."""
    ticket_type = repository.get_type(session, ticket_type_id)
    if ticket_type is None:
        raise _invalid("Ticket type not found", "ticket_type_id")
    if ticket_type.archived:
        raise _invalid("Ticket type is archived", "ticket_type_id")
    if user_id is not None and user_repository.get(session, user_id) is None:
        raise intercom_error(404, "not_found", "Contact not found", "contacts")
    if user_id is None and ticket_type.category == "Customer":
        raise intercom_error(
            400, "parameter_not_found", "A customer ticket needs a contact", "contacts"
        )
    state = _state(session, state_id)
    now = utcnow()
    ticket = Ticket(
        number=repository.next_number(session),
        ticket_type=ticket_type,
        state=state,
        attributes=checked_attributes(ticket_type, attributes),
        user_id=user_id,
        created_by_id=actor.agent_id,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    return ticket


def get_ticket(session: Session, ticket_id: str) -> Ticket:
    ticket = repository.get(session, ticket_id)
    if ticket is None:
        raise intercom_error(404, "not_found", "Ticket not found", "id")
    return ticket


def ticket_of_conversation(session: Session, conversation_id: str) -> Ticket | None:
    return repository.of_conversation(session, conversation_id)


UNCHANGED: Any = object()


def _link(session: Session, ticket: Ticket, tracker_id: str | None) -> None:
    if tracker_id is None:
        ticket.tracker_id = None
        return
    if ticket.ticket_type.category != "Customer":
        raise _invalid("Only a customer ticket is linked to a tracker ticket", "tracker_ticket_id")
    tracker = repository.get(session, tracker_id)
    if tracker is None or tracker.ticket_type.category != "Tracker":
        raise _invalid("Tracker ticket not found", "tracker_ticket_id")
    ticket.tracker_id = tracker.id


def _move(
    session: Session, ticket: Ticket, state: TicketState, actor: Actor, via: Ticket | None
) -> None:
    """Move the ticket to ``state``: a history row on its conversation, Fin told through the
    conversation's ``ticket`` attribute. ``via``: the tracker ticket whose change moved it."""
    before = ticket.state
    ticket.state = state
    ticket.updated_at = utcnow()
    session.flush()
    if ticket.conversation_id is not None:
        detail: dict[str, Any] = {
            "action": "state",
            "ticket_id": ticket.id,
            "number": ticket.number,
        }
        if via is not None:
            detail["tracker_ticket_id"], detail["tracker_number"] = via.id, via.number
        history.record(
            session,
            ticket.conversation_id,
            "ticket",
            actor,
            from_value=before.internal_label,
            to_value=state.internal_label,
            detail=detail,
        )
    _tell_fin(session, ticket, actor)


def update_ticket(
    session: Session,
    ticket_id: str,
    actor: Actor,
    *,
    attributes: dict[str, Any] | None = None,
    state_id: str | None = None,
    tracker_id: str | None = UNCHANGED,
) -> Ticket:
    """Merge attributes, link to a tracker ticket (``None`` unlinks) and move to a state. A
    state change is in the conversation's history and reaches Fin through its ``ticket``
    attribute; a tracker ticket's state change moves every ticket linked to it the same way."""
    ticket = repository.get_for_update(session, ticket_id)
    if ticket is None:
        raise intercom_error(404, "not_found", "Ticket not found", "id")
    if attributes:
        merged = checked_attributes(ticket.ticket_type, attributes, ticket.attributes)
        if merged != ticket.attributes:
            ticket.attributes = merged
            ticket.updated_at = utcnow()
    if tracker_id is not UNCHANGED and tracker_id != ticket.tracker_id:
        _link(session, ticket, tracker_id)
        ticket.updated_at = utcnow()
    if state_id is not None and state_id != ticket.state_id:
        state = _state(session, state_id)
        _move(session, ticket, state, actor, None)
        if ticket.ticket_type.category == "Tracker":
            for linked in repository.linked_to(session, ticket.id):
                if linked.state_id != state.id:
                    _move(session, linked, state, actor, ticket)
    session.flush()
    return ticket


def linked_tickets(session: Session, tracker: Ticket) -> list[Ticket]:
    return list(repository.linked_to(session, tracker.id))


def list_tickets(
    session: Session,
    *,
    state_id: str | None = None,
    ticket_type_id: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Ticket], int]:
    rows, total = repository.page(
        session,
        state_id=state_id,
        ticket_type_id=ticket_type_id,
        offset=(page - 1) * per_page,
        limit=per_page,
    )
    return list(rows), total
