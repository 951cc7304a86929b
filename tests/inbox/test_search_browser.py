"""Search in a real headless Chromium: from the Waiting queue, the search box finds a
conversation that only All lists, with its snippet highlighted; "in this queue" keeps the
search to the queue. A GET form: no script involved."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from support.fin import World
from support.server import LiveServer, database_url

from findesk.agents.service import create_agent

PASSWORD = "correct horse battery staple"
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = LiveServer(database_url("sqlite", request, tmp_path_factory.mktemp("db"))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def fin(server: LiveServer) -> Iterator[World]:
    world = server.fin_world()
    yield world
    world.api.http.close()


def test_search_from_waiting_finds_a_conversation_in_all_with_its_snippet_highlighted(
    server: LiveServer, fin: World, browser: Browser
) -> None:
    word = f"wombat{uuid.uuid4().hex[:8]}"
    # Fin handles this one: it is in All, not in Waiting.
    found, _ = fin.conversation(body=f"<p>My parcel &lt;b&gt; {word} never came</p>")
    waiting, _ = fin.conversation(body="<p>Someone, please</p>")
    fin.hand_over(waiting["id"])
    email = f"agent-{uuid.uuid4().hex[:6]}@example.com"
    with server.db.transaction() as session:
        create_agent(session, email=email, name="Sam Search", password=PASSWORD)

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{server.base_url}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))
        row = page.locator(f'li.conversation-item[data-conversation-id="{found["id"]}"]')
        waiting_row = page.locator(f'li.conversation-item[data-conversation-id="{waiting["id"]}"]')
        expect(waiting_row).to_be_visible()  # the Waiting queue
        expect(row).to_have_count(0)

        within = page.get_by_label("in Waiting for a human")
        expect(within).not_to_be_checked()
        page.get_by_role("searchbox", name="Search conversations").fill(word[:-2])  # as typed
        page.get_by_role("button", name="Search").click()
        expect(row).to_be_visible()
        mark = row.locator(".snippet mark")
        expect(mark).to_have_text(word)
        expect(row.locator(".snippet")).to_contain_text(f"My parcel <b> {word} never came")
        expect(page.locator(".snippet b")).to_have_count(0)  # the text's "<b>" stays text
        expect(page.locator("p.searching")).to_contain_text(word[:-2])

        # Kept to the Waiting queue, it finds nothing there.
        page.goto(f"{server.base_url}/inbox?queue=waiting")
        page.get_by_role("searchbox", name="Search conversations").fill(word)
        page.get_by_label("in Waiting for a human").check()
        page.get_by_role("button", name="Search").click()
        expect(page.locator("p.searching")).to_contain_text(word)
        expect(row).to_have_count(0)
        expect(page.locator("li.empty")).to_be_visible()
    finally:
        context.close()
