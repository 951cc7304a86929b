"""The emulator's parts together, against a real findesk: pages in the content library, the
answerer, and the sync engine answering in findesk as Fin and handing over."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support.server import LiveServer

from findesk.conversations.models import Conversation
from findesk.emulator.answerer import RetrievalAnswerer
from findesk.emulator.content_store import ContentStore
from findesk.emulator.sync import HelpdeskConnection, SyncEngine

REFUNDS_URL = "https://help.example.com/refunds"


@pytest.fixture
def engine(server: LiveServer, tmp_path) -> SyncEngine:
    store = ContentStore(f"sqlite:///{tmp_path / 'content.db'}")
    source = store.create_source("https://help.example.com", "api", "active")
    for external_id, title, html, url in [
        (
            "refunds",
            "Refunds",
            "<p>Refunds are paid back to the original card within 5 business days of approval.</p>",
            REFUNDS_URL,
        ),
        (
            "export",
            "Exporting data",
            "<p>Go to Settings, then Export, and choose CSV or "
            "JSON to download all your conversations.</p>",
            "https://help.example.com/export",
        ),
        (
            "sso",
            "Single sign-on",
            "<p>Single sign-on works with Okta and Google Workspace on the Enterprise plan.</p>",
            "https://help.example.com/sso",
        ),
    ]:
        store.upsert_page(
            source_id=source.id,
            external_id=external_id,
            title=title,
            html=html,
            url=url,
            locale="en",
            ai_agent_availability=True,
            ai_copilot_availability=False,
        )
    client_id, secret = server.new_oauth_client()
    connection = HelpdeskConnection(
        f"{server.base_url}/api/fin", f"{server.base_url}/oauth/token", client_id, secret
    )
    return SyncEngine(
        connection,
        RetrievalAnswerer(store.pages, fin_agent_id=server.fin_agent_id),
        server.fin_agent_id,
        retry_delay=0.05,
        debounce=0.05,
    )


def test_fin_answers_from_the_library_then_hands_over_on_request(engine, server) -> None:
    run = engine.start_conversation(
        {"object_id": "messenger-visitor-1", "name": "Ana", "email": "ana@example.com"},
        "<p>How long do refunds take to reach my card?</p>",
    )
    assert run.error is None and run.reply is not None
    assert "5 business days" in run.reply["body"]
    assert f'href="{REFUNDS_URL}"' in run.reply["body"]  # the page is cited
    assert run.reply["author"]["id"] == server.fin_agent_id
    cid = run.conversation_id
    assert cid is not None

    asked = engine.user_says(cid, "<p>Thanks, but I want to talk to a human please.</p>")
    assert asked.error is None and asked.decision is not None and asked.decision.hand_over
    with server.db.read_session() as session:
        conversation = session.scalars(select(Conversation).where(Conversation.id == cid)).one()
        assert conversation.assignee_id is None  # waiting for a human in findesk's inbox
        assert conversation.title
