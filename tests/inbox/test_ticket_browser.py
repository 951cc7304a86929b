"""Tickets in a real Chromium: an agent converts a handed-over conversation into a ticket from
its side panel, moves it on, and finds it on the Tickets page; Fin reads the ticket's state in
the conversation's attributes. Writes docs/inbox-ticket.png for the README."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from support.receiver import eventually
from support.screenshots import save
from support.server import LiveServer
from web_support import Person, new_agent, signed_in_page, start_server

from findesk import demo
from findesk.agents.models import Agent
from findesk.conversations.models import Conversation
from findesk.tickets import service as tickets
from findesk.tickets.schemas import TicketTypeCreate

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def demo_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Person, str]]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("ticket-browser"))
    with live.db.transaction() as session:
        demo.seed(session, live.settings.fin_agent_email)
        admin = session.scalars(select(Agent).where(Agent.role == "admin")).first()
        assert admin is not None
        tickets.create_type(
            session,
            admin,
            TicketTypeCreate(name="Refund request", description="Money back", icon="💸"),
        )
        waiting = session.scalars(
            select(Conversation.id)
            .where(Conversation.assignee_id.is_(None), Conversation.status == "open")
            .order_by(Conversation.id)
        ).first()
    assert waiting is not None
    yield live, new_agent(live, "Tia Tickets"), waiting
    live.stop()


def ticket_attribute(live: LiveServer, conversation_id: str) -> object:
    """What Fin reads of the ticket: the conversation's ``ticket`` attribute."""
    return live.fin_world().api.get_conversation(conversation_id).data["attributes"].get("ticket")


def test_convert_a_conversation_and_move_its_ticket_on(
    browser: Browser, demo_server: tuple[LiveServer, Person, str]
) -> None:
    live, agent, conversation_id = demo_server
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = signed_in_page(context, live, agent)
        page.goto(f"{live.base_url}/inbox/conversations/{conversation_id}")
        card = page.locator("section.ticket-card")
        card.get_by_text("Convert to ticket").click()
        card.get_by_label("Type").select_option(label="Refund request")
        card.get_by_label("Title").fill("Refund the double charge")
        card.get_by_role("button", name="Convert").click()

        expect(page.get_by_role("status").filter(has_text="Converted to ticket #")).to_be_visible()
        expect(card.get_by_role("heading", name="Ticket #")).to_be_visible()
        expect(card).to_contain_text("Refund the double charge")
        expect(card.locator(".ticket-state")).to_have_text("Submitted")
        assert eventually(
            lambda: (ticket_attribute(live, conversation_id) or {}).get("state") == "Submitted"
        )

        card.get_by_label("State").select_option(label="Waiting on customer")
        card.get_by_role("button", name="Move").click()
        expect(card.locator(".ticket-state")).to_have_text("Waiting on customer")
        expect(card).to_contain_text("The customer sees “Awaiting your reply”.")
        # Fin reads the label the customer sees, to tell them where their ticket stands.
        assert eventually(
            lambda: (
                (ticket_attribute(live, conversation_id) or {}).get("state")
                == "Awaiting your reply"
            )
        )
        card.scroll_into_view_if_needed()
        save(page, "inbox-ticket.png")

        page.get_by_role("link", name="Tickets").first.click()
        expect(page.get_by_text("Refund the double charge")).to_be_visible()
    finally:
        context.close()
