"""The SLA chip in a real Chromium: after Fin's handover the conversation's header and its queue
row show the first response's time left; it counts down in the page without a reload, turns
"due" under a quarter of the target and "breached" past it (the page's clock is moved forward);
a human's reply, arriving live, pauses what is left ("Paused"). Both backends; axe-clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from inbox.web_support import new_agent, signed_in_page, start_server
from playwright.sync_api import Browser, Page, expect
from support.a11y import assert_accessible
from support.server import LiveServer

from findesk.sla import service as sla
from findesk.sla.schemas import PolicyIn

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, Path(tmp_path_factory.mktemp("sla-chip")))
    with live.db.transaction() as session:
        sla.create_policy(
            session,
            PolicyIn(name="Default", first_response_minutes=30, resolution_minutes=240),
        )
    yield live
    live.stop()


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    # The page's own clock (Date, timers), moved forward by the test; the server's is real.
    context.clock.install()
    opened = signed_in_page(context, server, new_agent(server, "Tess Timer"))
    yield opened
    context.close()


def test_the_chip_counts_down_turns_due_then_breached_and_pauses_on_a_reply(
    page: Page, server: LiveServer
) -> None:
    fin = server.fin_world()
    conversation, _ = fin.conversation(body="<p>My parcel?</p>", title="Parcel lost")
    fin.hand_over(conversation["id"])
    cid = conversation["id"]

    page.goto(f"{server.base_url}/inbox/conversations/{cid}?queue=waiting")
    chip = page.locator(".conversation-head .chip.sla")
    row_chip = page.locator(f'.conversation-item[data-conversation-id="{cid}"] .badge.sla')
    expect(chip).to_be_visible()
    expect(chip).to_have_attribute("data-sla", "ok")
    expect(chip).to_have_text("First response in 30 min")
    expect(row_chip).to_have_attribute("data-sla", "ok")
    assert_accessible(page, "a conversation with its SLA chip")

    # Twenty-three minutes later, in the page: seven left of thirty, under a quarter.
    page.clock.fast_forward("23:00")
    expect(chip).to_have_attribute("data-sla", "due")
    expect(chip).to_have_text("First response in 7 min")
    expect(row_chip).to_have_text("First response in 7 min")
    assert_accessible(page, "a conversation whose first response is nearly due")

    page.clock.fast_forward("10:00")
    expect(chip).to_have_attribute("data-sla", "breached")
    expect(chip).to_have_text("First response overdue 3 min")
    expect(row_chip).to_have_attribute("data-sla", "breached")
    assert_accessible(page, "a conversation past its first response target")

    # A colleague replies: the first response is met, the resolution waits on the customer.
    colleague = server.agent_http("colleague-sla@example.com", "Cole League")
    try:
        sent = colleague.post(f"/conversations/{cid}/messages", json={"body": "<p>Found it</p>"})
        assert sent.status_code == 201, sent.text
    finally:
        colleague.close()
    expect(chip).to_have_attribute("data-sla", "paused")
    expect(chip).to_have_text("Paused")


def test_an_admin_adds_a_policy_on_the_sla_page(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = signed_in_page(context, server, new_agent(server, "Ada Admin", role="admin"))
        page.goto(f"{server.base_url}/inbox/admin")
        page.get_by_role("link", name="SLA policies").click()
        expect(page.get_by_role("heading", name="SLA policies", level=1)).to_be_visible()
        assert_accessible(page, "the SLA policies page")
        page.get_by_label("Name").fill("Urgent ones")
        page.get_by_label("Priority (empty: any)").fill("urgent")
        page.get_by_label("First response, in minutes").fill("10")
        page.get_by_label("On breach").select_option("raise_priority")
        page.get_by_role("button", name="Create the policy").click()
        expect(page.get_by_role("status")).to_have_text("Policy created.")
        row = page.locator("tr.policy").filter(has_text="Urgent ones")
        expect(row).to_contain_text("priority urgent")
        expect(row).to_contain_text("first response 10")
        expect(row).to_contain_text("raise priority")
        assert_accessible(page, "the SLA policies page with two policies")
    finally:
        context.close()
