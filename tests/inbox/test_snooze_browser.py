"""Snooze and wake in a real Chromium: an agent snoozes a waiting conversation from the keyboard
and goes on to the next one; it waits in "Snoozed" and comes back into the waiting queue, live,
when its time comes. A time typed in the agent's own time zone is kept as that moment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from support.a11y import assert_accessible
from support.server import LiveServer, database_url
from web_support import Person, new_agent, signed_in_page

from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit.actor import agent as agent_actor
from findesk.kit.timeutil import as_utc, utcnow

expect.set_options(timeout=15_000)
ZONE = "Asia/Kolkata"  # UTC+5:30 all year: the offset the page must send


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("snooze")
    live = LiveServer(database_url("sqlite", request, tmp), {"data_dir": tmp}).start()
    yield live
    live.stop()


@pytest.fixture
def agent(server: LiveServer) -> Person:
    return new_agent(server, "Zed Snooze")


@pytest.fixture
def page(browser: Browser, server: LiveServer, agent: Person) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id=ZONE)
    opened = signed_in_page(context, server, agent)
    yield opened
    context.close()


def snoozed_until(server: LiveServer, conversation_id: str) -> datetime | None:
    with server.db.read_session() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        return as_utc(row.snoozed_until) if row.snoozed_until else None


def waiting(server: LiveServer, title: str) -> str:
    fin = server.fin_world()
    conversation, _ = fin.conversation(body=f"<p>{title}</p>", title=title)
    fin.hand_over(conversation["id"])
    return str(conversation["id"])


def test_snooze_from_the_keyboard_then_wake_on_time(
    page: Page, server: LiveServer, agent: Person
) -> None:
    first = waiting(server, "Snooze first")
    waiting(server, "Snooze next")
    page.goto(f"{server.base_url}/inbox?queue=waiting")
    page.get_by_role("link", name="Snooze first").click()
    expect(page.get_by_role("heading", name="Snooze first")).to_be_visible()
    assert_accessible(page, "a conversation with its snooze form")

    # z picks how long (a day: two down from an hour and four hours), Enter snoozes.
    page.keyboard.press("z")
    expect(page.get_by_label("Snooze", exact=True)).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("status").filter(has_text="Snoozed: it comes back in 1d")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Snooze next")).to_be_visible()
    until = snoozed_until(server, first)
    assert until is not None and timedelta(hours=23) < until - utcnow() <= timedelta(hours=24)

    # It waits in Snoozed, saying when it comes back; Waiting no longer counts it.
    page.get_by_role("link", name="Snoozed").click()
    row = page.locator(".conversation-item", has_text="Snooze first")
    expect(row).to_contain_text("snoozed · back in 1d")
    expect(page.locator("[data-count=snoozed]")).to_have_text("1")
    expect(page.locator("[data-count=waiting]")).to_have_text("1")
    assert_accessible(page, "the Snoozed queue")

    # Its time comes (set a few seconds ahead, as the API would): the waker brings it back,
    # and the open Snoozed queue updates itself, with no reload.
    with server.db.transaction() as session:
        conversations.snooze(session, first, utcnow() + timedelta(seconds=2), agent_actor(agent.id))
    expect(row).to_have_count(0)
    expect(page.locator("[data-count=snoozed]")).to_have_text("0")
    expect(page.locator("[data-count=waiting]")).to_have_text("2")
    assert snoozed_until(server, first) is None
    page.get_by_role("link", name="Waiting for a human").click()
    expect(page.locator(".conversation-item", has_text="Snooze first")).to_have_count(1)

    # Until a time typed in the agent's zone: the moment kept is that time in UTC+5:30.
    page.get_by_role("link", name="Snooze first").click()
    local = (utcnow() + timedelta(days=3, hours=6, minutes=30)).replace(second=0, microsecond=0)
    until_field = page.get_by_label("Snooze until")
    expect(until_field).to_be_hidden()  # until asked for
    page.get_by_label("Snooze", exact=True).select_option("until")
    until_field.fill(local.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Snooze", exact=True).click()
    expect(
        page.get_by_role("status").filter(has_text="Snoozed: it comes back in 3d")
    ).to_be_visible()
    assert snoozed_until(server, first) == local - timedelta(hours=5, minutes=30)

    # Woken by hand from the conversation.
    page.goto(f"{server.base_url}/inbox/conversations/{first}")
    page.get_by_role("button", name="Wake now").click()
    expect(page.get_by_role("status").filter(has_text="Woken: back in its queue.")).to_be_visible()
    assert snoozed_until(server, first) is None
