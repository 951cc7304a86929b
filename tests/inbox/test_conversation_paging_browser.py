"""A long conversation in a real headless Chromium: "Show older messages" loads them in place,
above the ones shown, without a reload, keeping the reader's place and the reply being written;
a live refresh then adds the new message and keeps the older ones."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.long_conversation import open_long
from support.server import LiveServer
from web_support import PASSWORD, Person, new_agent, start_server

WAIT_MS = 15_000  # generous for a shared two-core machine

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("long-browser"))
    yield live
    live.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def sign_in(context: BrowserContext, base_url: str, person: Person) -> Page:
    page = context.new_page()
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))
    return page


def shown_ids(page: Page) -> list[str]:
    return list(page.locator(".thread > li.message").evaluate_all("items => items.map(i => i.id)"))


def test_show_older_messages_loads_them_in_place_and_live_refresh_keeps_them(
    server: LiveServer, context: BrowserContext
) -> None:
    ada = new_agent(server, "Ada Agent")
    fin = server.fin_world()
    long = open_long(fin, server.db, 110, human_agent_id=ada.id)  # pages of 50, 50 and 10
    cid, ids = long.id, long.message_ids

    page = sign_in(context, server.base_url, ada)
    page.goto(f"{server.base_url}/inbox/conversations/{cid}?queue=all")
    expect(page.locator("body")).to_have_attribute("data-live", "open")
    messages = page.locator(".thread > li.message")
    expect(messages).to_have_count(50)
    assert shown_ids(page) == ids[-50:]
    # A reply being written, and a marker that a reload or navigation would erase.
    page.get_by_role("textbox", name="Message").click()
    page.keyboard.type("Draft in progress")
    page.evaluate("window.__findeskTestMarker = 'same page'")

    older = page.get_by_role("link", name="Show older messages")
    older.scroll_into_view_if_needed()
    anchor = page.locator(f"[id='{ids[-50]}']")
    top_before = anchor.evaluate("el => el.getBoundingClientRect().top")
    older.click()
    expect(messages).to_have_count(100)
    assert shown_ids(page) == ids[-100:]
    # The reader's place did not move: the message that was first is where it was.
    top_after = anchor.evaluate("el => el.getBoundingClientRect().top")
    assert abs(top_after - top_before) < 4, (top_before, top_after)
    expect(older).to_have_attribute("href", re.compile(rf"before={ids[-100]}"))
    expect(older).to_be_focused()

    older.click()
    expect(messages).to_have_count(110)
    expect(page.get_by_role("link", name="Show older messages")).to_have_count(0)
    assert shown_ids(page) == ids

    # Fin writes: the live refresh adds it and keeps the older messages loaded.
    said = fin.fin_says(cid, "<p>Fresh from Fin</p>")
    expect(page.locator(f"[id='{said['id']}']")).to_contain_text("Fresh from Fin")
    expect(messages).to_have_count(111)
    assert shown_ids(page) == [*ids, said["id"]]

    expect(page.get_by_role("textbox", name="Message")).to_have_text("Draft in progress")
    assert page.evaluate("window.__findeskTestMarker") == "same page", "the page was reloaded"
