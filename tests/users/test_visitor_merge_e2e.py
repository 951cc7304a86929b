"""End to end with the Fin emulator's sync engine, on SQLite and on PostgreSQL: an anonymous
Messenger visitor asks, Fin answers from the content library, hands over on request, an agent
converts the conversation to a ticket and moves it on (Fin's next sync reads the ticket's state
in the conversation's attributes), merges the visitor into a known user, and Fin, still holding
the visitor's id, carries on: the end user's next message (written with the old id), the next
sync run, and a new conversation started for the old id all work, on the user."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select
from support.server import LiveServer

from findesk.agents.models import Agent
from findesk.agents.service import create_agent
from findesk.emulator.answerer import RetrievalAnswerer
from findesk.emulator.content_store import ContentStore
from findesk.emulator.sync import HelpdeskConnection, SyncEngine
from findesk.tickets import service as tickets
from findesk.tickets.schemas import TicketTypeCreate


@pytest.fixture
def engine(server: LiveServer, tmp_path) -> SyncEngine:
    store = ContentStore(f"sqlite:///{tmp_path / 'content.db'}")
    source = store.create_source("https://help.example.com", "api", "active")
    store.upsert_page(
        source_id=source.id,
        external_id="refunds",
        title="Refunds",
        html="<p>Refunds are paid back to the original card within 5 business days.</p>",
        url="https://help.example.com/refunds",
        locale="en",
        ai_agent_availability=True,
        ai_copilot_availability=False,
    )
    client_id, secret = server.new_oauth_client()
    connection = HelpdeskConnection(
        f"{server.base_url}/api/fin", f"{server.base_url}/oauth/token", client_id, secret
    )
    engine = SyncEngine(
        connection,
        RetrievalAnswerer(store.pages, fin_agent_id=server.fin_agent_id),
        server.fin_agent_id,
        retry_delay=0.05,
        debounce=0.05,
    )
    yield engine
    engine.close()


def customer_ticket_type(server: LiveServer) -> str:
    with server.db.transaction() as session:
        admin = session.scalars(select(Agent).where(Agent.role == "admin")).first()
        if admin is None:
            admin = create_agent(
                session, email=f"admin-{uuid.uuid4().hex[:8]}@example.com", name="A", role="admin"
            )
        return tickets.create_type(session, admin, TicketTypeCreate(name="Refund request")).id


def test_fin_carries_on_after_the_visitor_is_merged(
    server: LiveServer, engine: SyncEngine, agent_client: httpx.Client
) -> None:
    run = engine.start_conversation(
        {"object_id": f"messenger-visitor-{uuid.uuid4().hex[:8]}", "name": "Anon"},
        "<p>How long do refunds take to reach my card?</p>",
    )
    assert run.ok and run.reply is not None and "5 business days" in run.reply["body"]
    cid = run.conversation_id
    assert cid is not None
    asked = engine.user_says(cid, "<p>Thanks, but I want to talk to a human please.</p>")
    assert asked.ok and asked.decision is not None and asked.decision.hand_over
    visitor_id = engine.memory.seen(cid).user_id
    assert visitor_id is not None

    # The agent converts it to a ticket, then waits on the customer: Fin's next sync reads
    # where the ticket stands, in the words the customer is to be told.
    ticket_type_id = customer_ticket_type(server)
    converted = agent_client.post(
        f"/conversations/{cid}/convert",
        json={"ticket_type_id": ticket_type_id, "attributes": {"_default_title_": "Refund"}},
    )
    assert converted.status_code == 200, converted.text
    moved = agent_client.put(
        f"/tickets/{converted.json()['id']}", json={"ticket_state_id": "waiting_on_customer"}
    )
    assert moved.status_code == 200, moved.text
    assert engine.sync(cid).ok
    seen = engine.connection.api.get_conversation(cid).data["attributes"]["ticket"]
    assert (seen["type"], seen["state"], seen["open"]) == (
        "Refund request",
        "Awaiting your reply",
        True,
    )

    known = f"known-{uuid.uuid4().hex[:8]}@example.com"
    user_id = server.fin_world().user(name="Known Customer", email=known)["id"]
    response = agent_client.post(
        "/visitors/convert",
        json={"type": "user", "visitor": {"id": visitor_id}, "user": {"email": known}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user_id

    # Fin still holds the visitor's id: the end user's next message is written with it.
    assert engine.memory.seen(cid).user_id == visitor_id
    again = engine.user_says(cid, "<p>Are you still there?</p>")
    assert again.ok, again.error
    synced = engine.sync(cid)
    assert synced.ok, synced.error
    conversation = engine.connection.api.get_conversation(cid).data
    assert conversation["user"]["id"] == user_id
    assert conversation["user"]["email"] == known
    assert engine.connection.api.get_user(visitor_id).data["id"] == user_id
    messages = engine.connection.api.get_messages(cid).data
    end_user_authors = {
        m["author"]["id"] for m in messages if m["author"]["user_type"] == "end_user"
    }
    assert end_user_authors == {user_id}
    assert "Are you still there?" in messages[-1]["body"] or any(
        "Are you still there?" in (m["body"] or "") for m in messages
    )
    # The Messenger starts another conversation for the visitor it knew: it lands on the user.
    later = engine.start_conversation({"user_id": visitor_id}, "<p>How long do refunds take?</p>")
    assert later.ok, later.error
    assert later.conversation_id is not None
    other = engine.connection.api.get_conversation(later.conversation_id).data
    assert other["user"]["id"] == user_id
