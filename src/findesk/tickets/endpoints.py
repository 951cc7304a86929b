"""``/api/v1/ticket_types``, ``/api/v1/ticket_states``, ``/api/v1/tickets`` and converting a
conversation (``POST /api/v1/conversations/{id}/convert``), in Intercom's shapes. Thin:
authenticate, call the domain, shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from sqlalchemy.orm import Session

from findesk.agent_api.intercom import IntercomRoute, error_doc
from findesk.agent_api.security import agent_api_router, current_agent
from findesk.conversations.models import Conversation
from findesk.kit.actor import agent as agent_actor
from findesk.kit.http import db_of
from findesk.tickets import schemas as s
from findesk.tickets import service
from findesk.tickets.models import Ticket, TicketState, TicketType

router = agent_api_router(
    tag="Tickets", not_found="No such ticket, ticket type, attribute or conversation."
)
router.route_class = IntercomRoute  # Intercom's Tickets API: its error.list shape


ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    400: error_doc("Intercom's `parameter_invalid`: e.g. a name already taken."),
    403: error_doc("The calling agent is not an administrator."),
}
INTERCOM_400: dict[int | str, dict[str, Any]] = {
    400: error_doc(
        "Intercom's `parameter_invalid` or `parameter_not_found` (in `code` and in "
        "`errors[0]`): e.g. not a customer ticket type, an unknown attribute, a value of the "
        "wrong type, a required attribute missing."
    )
}


def _unix(value: Any) -> int:
    return int(value.timestamp())


def attribute_view(ticket_type_id: str, order: int, a: dict[str, Any]) -> s.TicketTypeAttributeOut:
    items = a.get("list_items")
    return s.TicketTypeAttributeOut(
        id=a["id"],
        ticket_type_id=ticket_type_id,
        name=a["name"],
        description=a.get("description") or "",
        data_type=a["data_type"],
        input_options=(
            s.InputOptions(list_options=[s.ListItemOut(**item) for item in items])
            if items is not None
            else None
        ),
        order=order,
        required_to_create=a["required_to_create"],
        visible_to_contacts=a["visible_to_contacts"],
        default=a["default"],
        archived=a["archived"],
    )


def type_view(ticket_type: TicketType) -> s.TicketTypeOut:
    return s.TicketTypeOut(
        id=ticket_type.id,
        name=ticket_type.name,
        description=ticket_type.description,
        icon=ticket_type.icon,
        category=ticket_type.category,
        ticket_type_attributes=s.TicketTypeAttributeList(
            data=[
                attribute_view(ticket_type.id, order, a)
                for order, a in enumerate(ticket_type.attributes)
            ]
        ),
        archived=ticket_type.archived,
        created_at=_unix(ticket_type.created_at),
        updated_at=_unix(ticket_type.updated_at),
    )


def state_view(state: TicketState) -> s.TicketStateOut:
    return s.TicketStateOut(
        id=state.id,
        category=state.category,
        internal_label=state.internal_label,
        external_label=state.external_label,
    )


def ticket_view(session: Session, ticket: Ticket) -> s.TicketOut:
    user = ticket.user
    contacts = (
        [s.ContactRef(id=user.id, external_id=user.object_id, email=user.email)] if user else []
    )
    assignee_id = None
    linked: list[s.LinkedObject] = []
    if ticket.conversation_id is not None:
        conversation = session.get(Conversation, ticket.conversation_id)
        if conversation is not None and conversation.assignee is not None:
            if not conversation.assignee.is_bot:
                assignee_id = conversation.assignee_id
        linked.append(s.LinkedObject(type="conversation", id=ticket.conversation_id, category=None))
    if ticket.tracker_id is not None:
        linked.append(s.LinkedObject(type="ticket", id=ticket.tracker_id, category="Tracker"))
    if ticket.ticket_type.category == "Tracker":
        linked += [
            s.LinkedObject(type="ticket", id=t.id, category=t.ticket_type.category)
            for t in service.linked_tickets(session, ticket)
        ]
    category = ticket.ticket_type.category
    return s.TicketOut(
        id=ticket.id,
        ticket_id=str(ticket.number),
        category=category,
        ticket_attributes=dict(ticket.attributes),
        ticket_state=state_view(ticket.state),
        ticket_type=type_view(ticket.ticket_type),
        contacts=s.ContactList(contacts=contacts),
        admin_assignee_id=assignee_id,
        open=ticket.state.category != "resolved",
        is_shared=category == "Customer",
        linked_objects=s.LinkedObjectList(total_count=len(linked), has_more=False, data=linked),
        conversation_id=ticket.conversation_id,
        created_at=_unix(ticket.created_at),
        updated_at=_unix(ticket.updated_at),
    )


# --- ticket types (changes: administrators only) ----------------------------------------------


@router.get("/ticket_types", response_model=s.TicketTypeListOut)
def list_ticket_types(request: Request) -> s.TicketTypeListOut:
    """Every ticket type, archived ones too, by name."""
    current_agent(request)
    with db_of(request).read_session() as session:
        return s.TicketTypeListOut(data=[type_view(t) for t in service.list_types(session)])


@router.post("/ticket_types", response_model=s.TicketTypeOut, responses=ADMIN_ONLY)
def create_ticket_type(request: Request, body: s.TicketTypeCreate) -> s.TicketTypeOut:
    """A ticket type with the two default attributes (`_default_title_`, required, and
    `_default_description_`) and those sent."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        return type_view(service.create_type(session, me, body))


@router.get("/ticket_types/{ticket_type_id}", response_model=s.TicketTypeOut)
def get_ticket_type(request: Request, ticket_type_id: str) -> s.TicketTypeOut:
    current_agent(request)
    with db_of(request).read_session() as session:
        return type_view(service.get_type(session, ticket_type_id))


@router.put("/ticket_types/{ticket_type_id}", response_model=s.TicketTypeOut, responses=ADMIN_ONLY)
def update_ticket_type(
    request: Request, ticket_type_id: str, body: s.TicketTypeUpdate
) -> s.TicketTypeOut:
    """Only the fields present change; archive rather than delete."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        return type_view(service.update_type(session, me, ticket_type_id, body))


@router.post(
    "/ticket_types/{ticket_type_id}/attributes",
    response_model=s.TicketTypeAttributeOut,
    responses=ADMIN_ONLY,
)
def create_ticket_type_attribute(
    request: Request, ticket_type_id: str, body: s.TicketTypeAttributeIn
) -> s.TicketTypeAttributeOut:
    me = current_agent(request)
    with db_of(request).transaction() as session:
        attribute = service.add_attribute(session, me, ticket_type_id, body)
        order = len(service.get_type(session, ticket_type_id).attributes) - 1
        return attribute_view(ticket_type_id, order, attribute)


@router.put(
    "/ticket_types/{ticket_type_id}/attributes/{attribute_id}",
    response_model=s.TicketTypeAttributeOut,
    responses=ADMIN_ONLY,
)
def update_ticket_type_attribute(
    request: Request, ticket_type_id: str, attribute_id: str, body: s.TicketTypeAttributeUpdate
) -> s.TicketTypeAttributeOut:
    """Only the fields present change. Its name and data type stay (tickets hold values by
    name); an attribute is archived, never deleted."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        attribute = service.update_attribute(session, me, ticket_type_id, attribute_id, body)
        attributes = service.get_type(session, ticket_type_id).attributes
        order = next(i for i, a in enumerate(attributes) if a["id"] == attribute_id)
        return attribute_view(ticket_type_id, order, attribute)


@router.get("/ticket_states", response_model=s.TicketStateListOut)
def list_ticket_states(request: Request) -> s.TicketStateListOut:
    current_agent(request)
    with db_of(request).read_session() as session:
        return s.TicketStateListOut(data=[state_view(x) for x in service.list_states(session)])


# --- tickets ----------------------------------------------------------------------------------


@router.post(
    "/conversations/{conversation_id}/convert",
    response_model=s.TicketOut,
    responses={
        **INTERCOM_400,
        409: error_doc("Intercom's `conflict`: the conversation is already a ticket."),
    },
)
def convert_conversation(request: Request, conversation_id: str, body: s.ConvertIn) -> s.TicketOut:
    """Convert the conversation to a ticket of a customer ticket type (Intercom's Convert
    Conversation to Ticket). The ticket keeps the conversation's thread; Fin hears of it
    through the conversation's `ticket` attribute."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        ticket = service.convert(
            session,
            conversation_id,
            agent_actor(me.id),
            ticket_type_id=body.ticket_type_id,
            attributes=body.attributes,
            state_id=body.ticket_state_id,
        )
        return ticket_view(session, ticket)


@router.post(
    "/tickets",
    response_model=s.TicketOut,
    responses={**INTERCOM_400, 404: error_doc("Intercom's `not_found`: no such contact.")},
)
def create_ticket(request: Request, body: s.TicketCreate) -> s.TicketOut:
    """A ticket without a conversation (Intercom's Create Ticket): a back-office or tracker
    ticket, or a customer ticket for an end user (`contacts: [{id}]`)."""
    me = current_agent(request)
    with db_of(request).transaction() as session:
        ticket = service.create_ticket(
            session,
            agent_actor(me.id),
            ticket_type_id=body.ticket_type_id,
            user_id=body.contacts[0].id if body.contacts else None,
            attributes=body.ticket_attributes,
            state_id=body.ticket_state_id,
        )
        return ticket_view(session, ticket)


@router.get("/tickets", response_model=s.TicketListOut)
def list_tickets(
    request: Request,
    state_id: Annotated[str | None, Query(max_length=40, description="A ticket state.")] = None,
    ticket_type_id: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=150)] = 50,
) -> s.TicketListOut:
    """Newest change first."""
    current_agent(request)
    with db_of(request).read_session() as session:
        tickets, total = service.list_tickets(
            session, state_id=state_id, ticket_type_id=ticket_type_id, page=page, per_page=per_page
        )
        return s.TicketListOut(
            tickets=[ticket_view(session, t) for t in tickets],
            total_count=total,
            pages=s.Pages(page=page, per_page=per_page, total_pages=-(-total // per_page)),
        )


@router.get("/tickets/{ticket_id}", response_model=s.TicketOut)
def get_ticket(request: Request, ticket_id: str) -> s.TicketOut:
    current_agent(request)
    with db_of(request).read_session() as session:
        return ticket_view(session, service.get_ticket(session, ticket_id))


@router.put("/tickets/{ticket_id}", response_model=s.TicketOut, responses=INTERCOM_400)
def update_ticket(request: Request, ticket_id: str, body: s.TicketUpdate) -> s.TicketOut:
    """Intercom's Update Ticket: `ticket_attributes` merged by name, `ticket_state_id` moves
    it (in the conversation's history; Fin hears of it through the `ticket` attribute). A
    customer ticket links to a tracker ticket with `tracker_ticket_id` (null unlinks); moving
    the tracker moves every ticket linked to it."""
    me = current_agent(request)
    link = (
        {"tracker_id": body.tracker_ticket_id}
        if "tracker_ticket_id" in body.model_fields_set
        else {}
    )
    with db_of(request).transaction() as session:
        ticket = service.update_ticket(
            session,
            ticket_id,
            agent_actor(me.id),
            attributes=body.ticket_attributes,
            state_id=body.ticket_state_id,
            **link,
        )
        return ticket_view(session, ticket)
