"""Custom objects in a real Chromium: a conversation's side panel shows the end user's orders as
cards, readable in the light and the dark colour scheme, with a link to all of them. Writes
docs/inbox-objects.png for the README."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from support.screenshots import save
from support.server import LiveServer
from web_support import link_orders, start_server

from findesk import demo
from findesk.conversations.models import Conversation


@pytest.fixture(scope="module")
def demo_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, demo.DemoCredentials, str]]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("objects-browser"))
    with live.db.transaction() as session:
        credentials = demo.seed(session, live.settings.fin_agent_email)
        link_orders(session)
        first = session.scalars(select(Conversation.id).order_by(Conversation.id)).first()
    assert first is not None
    yield live, credentials, first
    live.stop()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_side_panel_shows_the_orders_as_cards(
    browser: Browser, demo_server: tuple[LiveServer, demo.DemoCredentials, str], scheme: str
) -> None:
    live, credentials, conversation_id = demo_server
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{live.base_url}/login")
        page.get_by_label("Email").fill(credentials.agent_email)
        page.get_by_label("Password").fill(credentials.agent_password or "")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("body")).to_have_attribute("data-live", "open")
        page.goto(f"{live.base_url}/inbox/conversations/{conversation_id}")
        panel = page.locator("section.objects")
        panel.scroll_into_view_if_needed()
        expect(panel.get_by_role("heading", name="Objects 7")).to_be_visible()
        cards = panel.locator("li.object-card")
        expect(cards).to_have_count(5)
        expect(cards.first).to_contain_text("ORDER-6")
        expect(cards.first).to_contain_text("Order")
        # The card stands out from the panel in either scheme (its own background and border).
        card_bg, panel_bg = page.evaluate(
            """() => [getComputedStyle(document.querySelector('.object-card')).backgroundColor,
                      getComputedStyle(document.querySelector('aside.details')).backgroundColor]"""
        )
        assert card_bg != panel_bg
        if scheme == "light":
            save(page, "inbox-objects.png")
        panel.get_by_role("link", name="Show all 7 objects").click()
        expect(page.locator("li.object-card")).to_have_count(7)
    finally:
        context.close()
