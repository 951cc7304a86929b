"""The inbox without a mouse, in a real Chromium: the keyboard shortcuts of ``keys.js``.

An agent opens the waiting conversation with j and Enter, takes it over with t, writes with r,
inserts a saved reply with /, sends with Ctrl+Enter, resolves with e and lands on the next one;
letters typed in a field stay in the field; ? shows the list of shortcuts and / goes to the
search box."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.a11y import assert_accessible
from support.fin import World
from support.receiver import eventually
from support.server import LiveServer
from web_support import new_agent, signed_in_page, start_server

from findesk.agents.models import Agent
from findesk.conversations.models import Conversation
from findesk.replies import service as replies

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("keys"))
    yield live
    live.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def signed_in(context: BrowserContext, server: LiveServer) -> Page:
    agent = new_agent(server, "Kim Keys", role="admin")
    with server.db.transaction() as session:
        author = session.get(Agent, agent.id)
        assert author is not None
        replies.create_reply(
            session,
            author,
            title=f"Tracking {agent.id}",
            body="<p>Hi {{user.name}}, it is on its way: tracking 123.</p>",
            shared=False,
        )
    return signed_in_page(context, server, agent)


def waiting_conversation(server: LiveServer, title: str) -> str:
    fin: World = server.fin_world()
    conversation, _ = fin.conversation(body="<p>My parcel never came.</p>", title=title)
    fin.fin_says(conversation["id"], "<p>Let me find someone.</p>")
    fin.hand_over(conversation["id"])
    return str(conversation["id"])


def status_of(server: LiveServer, conversation_id: str) -> str:
    with server.db.read_session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return conversation.status


def test_a_conversation_handled_from_the_keyboard_alone(
    context: BrowserContext, server: LiveServer
) -> None:
    waiting_conversation(server, "Then a second parcel")
    conversation_id = waiting_conversation(server, "Parcel never came")
    page = signed_in(context, server)
    page.goto(f"{server.base_url}/inbox?queue=waiting")
    item = page.locator(f'[data-conversation-id="{conversation_id}"] > a')
    expect(item).to_be_visible()

    page.keyboard.press("j")
    expect(item).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#conversation-title")).to_have_text("Parcel never came")

    page.keyboard.press("t")
    expect(page.get_by_role("button", name="Hand back to Fin")).to_be_visible()

    page.keyboard.press("r")
    editor = page.get_by_role("textbox", name="Message")
    expect(editor).to_be_focused()
    # Letters typed in the composer are text, not commands; / there opens the saved replies.
    page.keyboard.type("/track")
    expect(page.get_by_role("listbox", name="Saved replies")).to_be_visible()
    page.keyboard.press("Enter")
    expect(editor).to_have_text("Hi Jane Doe, it is on its way: tracking 123.")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".thread .message.from-agent").last).to_contain_text("tracking 123")

    page.keyboard.press("e")
    eventually(lambda: status_of(server, conversation_id) == "resolved")
    # On to the next waiting conversation, saying what was done.
    expect(page.locator("#conversation-title")).to_have_text("Then a second parcel")
    expect(page.get_by_role("status").filter(has_text="Resolved.")).to_contain_text(
        "Here is the next one."
    )
    page.keyboard.press("e")
    expect(page.locator("p.empty")).to_have_text("Resolved. Nothing else is waiting here.")


def test_n_writes_a_note_slash_searches_and_question_mark_lists_the_shortcuts(
    context: BrowserContext, server: LiveServer
) -> None:
    conversation_id = waiting_conversation(server, "Refund for order 77")
    page = signed_in(context, server)
    page.goto(f"{server.base_url}/inbox/conversations/{conversation_id}")

    page.keyboard.press("n")
    expect(page.get_by_role("radio", name="Private note")).to_be_checked()
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})

    page.keyboard.press("/")
    expect(page.get_by_role("searchbox", name="Search conversations")).to_be_focused()
    page.keyboard.type("order 77")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"q=order\+77"))

    page.keyboard.press("?")
    sheet = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text("Take over")
    assert_accessible(page, "the list of shortcuts")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
