"""The unread marker in a real Chromium: a conversation with news shows a dot and a bold title
(and says "Unread" to a screen reader) until the agent opens it; a new message arriving live
marks it again without a reload, unless the agent is looking at that conversation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import func, select
from support.a11y import assert_accessible
from support.server import LiveServer
from web_support import Person, new_agent, signed_in_page, start_server, unique

from findesk.conversations.models import ConversationRead, Message

expect.set_options(timeout=15_000)
MARKER = "window.__findeskUnreadMarker"


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("unread_browser"))
    yield live
    live.stop()


@pytest.fixture
def agent(server: LiveServer) -> Person:
    return new_agent(server, "Uma Unread")


@pytest.fixture(params=["light", "dark"])
def page(
    browser: Browser, server: LiveServer, agent: Person, request: pytest.FixtureRequest
) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=request.param
    )
    opened = signed_in_page(context, server, agent)
    yield opened
    context.close()


def row_of(page: Page, title: str) -> Locator:
    return page.locator(".conversation-item").filter(has_text=title)


def expect_unread(row: Locator, title: str) -> None:
    expect(row).to_have_class("conversation-item owner-waiting unread")
    expect(row.locator(".unread-dot")).to_be_visible()
    expect(row.locator(".title")).to_have_css("font-weight", "700")
    # What a screen reader says for the row's link.
    expect(row.get_by_role("link", name=f"Unread: {title}")).to_be_visible()


def expect_read(row: Locator, title: str) -> None:
    expect(row).not_to_have_class("unread")
    expect(row.locator(".unread-dot")).to_have_count(0)
    expect(row.locator(".title")).not_to_have_css("font-weight", "700")
    expect(row.get_by_role("link", name=title)).to_be_visible()
    expect(row.get_by_role("link", name="Unread")).to_have_count(0)


def read_to_the_end(server: LiveServer, agent_id: str, conversation_id: str) -> bool:
    with server.db.read_session() as session:
        newest = session.scalar(
            select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
        )
        read = session.get(ConversationRead, (agent_id, conversation_id))
        return read is not None and read.read_seq == newest


def test_opening_reads_it_and_a_live_message_marks_it_again(
    page: Page, server: LiveServer, agent: Person
) -> None:
    fin = server.fin_world()
    title = unique("Lost parcel")
    conversation, _ = fin.conversation(body="<p>Where is it?</p>", title=title)
    cid = conversation["id"]
    user_id = conversation["user"]["id"]
    fin.hand_over(cid)

    page.goto(f"{server.base_url}/inbox?queue=waiting")
    row = row_of(page, title)
    expect_unread(row, title)
    assert_accessible(page, "a queue with an unread conversation")

    row.get_by_role("link").click()
    expect(page).to_have_url(f"{server.base_url}/inbox/conversations/{cid}?queue=waiting")
    expect_read(row_of(page, title), title)  # the page's own queue already shows it read
    assert_accessible(page, "an opened conversation beside its queue")

    # The end user writes while the agent looks at the conversation: it shows, and stays read
    # once the queue beside it has refreshed (its row's preview is that message).
    fin.user_says(cid, user_id, "<p>Still nothing arrived.</p>")
    expect(page.locator(".thread")).to_contain_text("Still nothing arrived.")
    expect(row_of(page, title).locator(".preview")).to_have_text("Still nothing arrived.")
    expect_read(row_of(page, title), title)
    assert read_to_the_end(server, agent.id, cid)

    page.go_back()
    expect(page).to_have_url(f"{server.base_url}/inbox?queue=waiting")
    row = row_of(page, title)
    expect_read(row, title)

    # A message arriving live in the queue marks it unread again, without a reload.
    page.evaluate(f"{MARKER} = 'same page'")
    fin.user_says(cid, user_id, "<p>Hello? Anyone?</p>")
    expect(row.locator(".preview")).to_have_text("Hello? Anyone?")
    expect_unread(row, title)
    assert page.evaluate(MARKER) == "same page", "the page was reloaded"
    assert_accessible(page, "a queue whose row turned unread live")
