"""The ticket card in the conversation's side panel, over plain HTTP on SQLite and PostgreSQL:
converting from the inbox, moving the ticket through its states, what Fin and the timeline
show, and the refusals an agent reads next to the form."""

from __future__ import annotations

import uuid

import httpx
import pytest
from support.fin import World
from support.server import LiveServer
from web_support import Node, Web, unique

from findesk.agents.service import create_agent
from findesk.tickets import service as tickets
from findesk.tickets.schemas import TicketTypeCreate


def _ticket_type(server: LiveServer, category: str = "Customer", **fields: object) -> str:
    with server.db.transaction() as session:
        admin = create_agent(
            session, email=f"root-{uuid.uuid4().hex[:8]}@example.com", name="Root", role="admin"
        )
        body = TicketTypeCreate.model_validate(
            {"name": unique("Refund"), "category": category, **fields}
        )
        return tickets.create_type(session, admin, body).id


@pytest.fixture(scope="module")
def refund(server: LiveServer) -> str:
    return _ticket_type(server)


def follow(web: Web, response: httpx.Response) -> Node:
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return web.page(response.headers["location"])


def card(page: Node) -> Node:
    return page.find("aside", "details").find("section", "ticket-card")


def test_an_agent_converts_a_conversation_and_moves_the_ticket(
    world: World, web: Web, refund: str
) -> None:
    created, _ = world.conversation(title=unique("Broken"))
    cid = str(created["id"])
    before = card(web.page(f"/inbox/conversations/{cid}"))
    assert "Convert to ticket" in before.find("summary").text
    assert refund in [o.attrs["value"] for o in before.find("select").find_all("option")]

    page = follow(
        web,
        web.post(
            f"/inbox/conversations/{cid}/ticket",
            {"ticket_type_id": refund, "title": "Found a bug", "description": "It broke"},
        ),
    )
    assert "Converted to ticket #" in page.find(role="status", cls="notice").text
    shown = card(page)
    assert "Found a bug" in shown.text
    assert shown.find("span", "ticket-state").text == "Submitted"
    seen = world.api.get_conversation(cid).data["attributes"]["ticket"]
    assert seen["state"] == "Submitted"
    number = seen["ticket_id"]
    events = [e.text for e in page.find("ol", "thread").find_all("li", data_kind="ticket")]
    assert any(f"converted it to ticket #{number}" in text for text in events), events
    # The ticket attribute group is the card's: not listed again among the attributes.
    assert "Ticket" not in [dt.text for dt in page.find("aside", "details").find_all("dt")]

    page = follow(
        web,
        web.post(f"/inbox/conversations/{cid}/ticket/state", {"state_id": "waiting_on_customer"}),
    )
    shown = card(page)
    assert shown.find("span", "ticket-state").text == "Waiting on customer"
    assert "Awaiting your reply" in shown.text
    assert world.api.get_conversation(cid).data["attributes"]["ticket"]["state"] == (
        "Awaiting your reply"
    )
    events = [e.text for e in page.find("ol", "thread").find_all("li", data_kind="ticket")]
    assert any(
        f"moved ticket #{number} from Submitted to Waiting on customer" in t for t in events
    ), events


def test_the_form_says_what_is_wrong(server: LiveServer, world: World, web: Web) -> None:
    created, _ = world.conversation(title=unique("Lost"))
    cid = str(created["id"])
    tracker = _ticket_type(server, category="Tracker")
    needs_more = _ticket_type(
        server,
        ticket_type_attributes=[
            {"name": "order", "data_type": "string", "required_to_create": True}
        ],
    )
    page = follow(
        web,
        web.post(f"/inbox/conversations/{cid}/ticket", {"ticket_type_id": tracker, "title": "x"}),
    )
    assert page.find("p", "error").text == "Ticket type is not a customer ticket type"
    page = follow(
        web,
        web.post(
            f"/inbox/conversations/{cid}/ticket", {"ticket_type_id": needs_more, "title": "x"}
        ),
    )
    assert page.find("p", "error").text == "Ticket attribute 'order' is required."
    page = follow(
        web, web.post(f"/inbox/conversations/{cid}/ticket/state", {"state_id": "resolved"})
    )
    assert page.find("p", "error").text == "This conversation is not a ticket."
    assert "ticket" not in world.api.get_conversation(cid).data["attributes"]


def test_the_tickets_page_lists_them_by_state_and_type(
    server: LiveServer, world: World, web: Web, refund: str
) -> None:
    other = _ticket_type(server)
    made = {}
    for ticket_type, title in ((refund, unique("Parcel lost")), (other, unique("Wrong size"))):
        created, _ = world.conversation(title=title)
        follow(
            web,
            web.post(
                f"/inbox/conversations/{created['id']}/ticket",
                {"ticket_type_id": ticket_type, "title": title},
            ),
        )
        made[title] = str(created["id"])
    lost, wrong = made
    follow(
        web, web.post(f"/inbox/conversations/{made[wrong]}/ticket/state", {"state_id": "resolved"})
    )

    def listed(**params: str) -> list[str]:
        page = web.page("/inbox/tickets", **params)
        return [row.find("td").text for row in page.find_all("tr", "ticket-item")]

    everything = listed()
    assert any(lost in row for row in everything) and any(wrong in row for row in everything)
    assert not any(wrong in row for row in listed(state="submitted"))
    assert any(wrong in row for row in listed(state="resolved"))
    assert [row for row in listed(type=other) if lost in row] == []
    row = web.page("/inbox/tickets").find_all("tr", "ticket-item")[0]
    assert row.find("a").attrs["href"] == f"/inbox/conversations/{made[wrong]}"
    # Unknown filters are ignored, as the queues' are.
    assert listed(state="nope", page="x") == everything
