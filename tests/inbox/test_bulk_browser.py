"""Bulk actions in a real Chromium: an agent ticks conversations in a queue and resolves them in
one step; Fin is told of each, as when they are resolved one by one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from support.a11y import assert_accessible
from support.receiver import Receiver, eventually, notifier_settings
from support.server import LiveServer, database_url
from web_support import new_agent, signed_in_page

from findesk.conversations.models import Conversation
from findesk.notifier.models import OutboxEvent

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("bulk")
    live = LiveServer(
        database_url("sqlite", request, tmp), notifier_settings(receiver, data_dir=tmp)
    ).start()
    yield live
    live.stop()


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    agent = new_agent(server, "Bo Bulk")
    opened = signed_in_page(context, server, agent)
    yield opened
    context.close()


def statuses(server: LiveServer, ids: list[str]) -> dict[str, str]:
    with server.db.read_session() as session:
        rows = session.execute(
            select(Conversation.id, Conversation.status).where(Conversation.id.in_(ids))
        )
        return {row.id: row.status for row in rows}


def told_fin(server: LiveServer, conversation_id: str) -> bool:
    with server.db.read_session() as session:
        events = session.scalars(
            select(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id)
        )
        return any(e.state == "delivered" for e in events)


def test_two_waiting_conversations_resolved_in_one_step(page: Page, server: LiveServer) -> None:
    fin = server.fin_world()
    ids = []
    for title in ("Bulk one", "Bulk two", "Bulk stays"):
        conversation, _ = fin.conversation(body=f"<p>{title}</p>", title=title)
        fin.hand_over(conversation["id"])
        ids.append(str(conversation["id"]))
    page.goto(f"{server.base_url}/inbox?queue=waiting")
    expect(page.locator(".conversation-item")).to_have_count(3)
    bulk = page.get_by_role("button", name="Change selected")
    expect(bulk).to_be_hidden()  # until something is ticked

    page.get_by_role("checkbox", name="Select Bulk one").check()
    expect(bulk).to_be_visible()
    assert_accessible(page, "a queue with its bulk form")
    # A live refresh of the list (another conversation handed over) keeps the ticks.
    late, _ = fin.conversation(body="<p>Bulk late</p>", title="Bulk late")
    fin.hand_over(late["id"])
    expect(page.locator(".conversation-item")).to_have_count(4)
    expect(page.get_by_role("checkbox", name="Select Bulk one")).to_be_checked()
    page.get_by_role("checkbox", name="Select Bulk two").check()
    page.get_by_label("Selected:").select_option("resolved")
    bulk.click()

    expect(page.get_by_role("status").filter(has_text="2 conversations resolved.")).to_be_visible()
    expect(page.locator(".conversation-item .title")).to_have_text(["Bulk late", "Bulk stays"])
    assert statuses(server, ids) == {ids[0]: "resolved", ids[1]: "resolved", ids[2]: "open"}
    eventually(lambda: told_fin(server, ids[0]) and told_fin(server, ids[1]))
