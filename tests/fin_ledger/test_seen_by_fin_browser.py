"""Seen by Fin, in a real headless Chromium against findesk and the Fin emulator: an agent's
reply is marked "Fin has it" within a second of the emulator's get_messages; with the webhook
key wrong, Fin never fetches, and after the alert window the inbox shows a banner (without a
reload) and ``/metrics`` counts the reply.

Nothing sleeps: Playwright's ``expect`` waits for what the agent would see, and a
MutationObserver in the page notes when (wall clock) a mark or the banner entered the DOM.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledger_support import (
    WEBHOOK_KEY,
    Served,
    calls,
    findesk_and_emulator,
    message,
    metric,
    scrape,
    until,
)
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from support.server import LiveServer

from findesk.agents.service import create_agent
from findesk.conversations.models import Message
from findesk.fin_ledger.models import FinCall
from findesk.kit.timeutil import as_utc

PASSWORD = "correct horse battery staple"
WAIT_MS = 15_000
ALERT_SECONDS = 2.0
# Fin's sync starts this long after the webhook: time for the page to load after the reply and
# its live feed to connect, so that the mark is seen to change rather than rendered changed.
EMULATOR_DEBOUNCE = 2.0

expect.set_options(timeout=WAIT_MS)

# Notes, per message (or "banner"), the wall-clock time (ms) at which its element appeared.
OBSERVE = """
() => {
  window.__appeared = {};
  const look = () => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-fin-receipt]')) {
      const key = `${el.closest('li.message')?.id}:${el.dataset.finReceipt}`;
      if (!(key in window.__appeared)) window.__appeared[key] = now;
    }
    if (document.querySelector('#fin-alert .fin-alert') && !('banner' in window.__appeared)) {
      window.__appeared.banner = now;
    }
  };
  new MutationObserver(look).observe(document.body, { childList: true, subtree: true });
  look();
}
"""


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def sign_in_and_open(context: BrowserContext, server: LiveServer, conversation_id: str) -> Page:
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    with server.db.transaction() as session:
        create_agent(session, email=email, name="Ada Lovelace", password=PASSWORD)
    page = context.new_page()
    page.goto(f"{server.base_url}/login?next=/inbox/conversations/{conversation_id}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/inbox/conversations/{conversation_id}"))
    return page


def reply_in_inbox(page: Page, server: LiveServer, conversation_id: str, text: str) -> Message:
    """Write and send a public reply as the agent would; the reply as stored."""
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".thread .message.from-agent", has_text=text)).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "open")
    with server.db.read_session() as session:
        query = select(Message.id).where(
            Message.conversation_id == conversation_id, Message.body.contains(text)
        )
        message_id = session.scalars(query).one()
    return message(server, message_id)


def appeared_at(page: Page, key: str) -> datetime:
    millis = page.evaluate("key => window.__appeared[key]", key)
    assert millis is not None, f"{key} was never seen appearing"
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def handed_over_conversation(server: LiveServer) -> str:
    fin = server.fin_world()
    conversation, _ = fin.conversation(body="<p>My parcel never arrived.</p>")
    fin.fin_says(conversation["id"], "<p>Let me find a person for you.</p>")
    fin.hand_over(conversation["id"])
    return str(conversation["id"])


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[tuple[LiveServer, Served]]:
    findesk, emulator = findesk_and_emulator(
        f"sqlite:///{tmp_path / 'findesk.db'}",
        tmp_path / "emulator",
        emulator_debounce=EMULATOR_DEBOUNCE,
    )
    yield findesk, emulator
    emulator.stop()
    findesk.stop()


def test_a_reply_is_marked_fin_has_it_within_a_second_of_fins_fetch(
    context: BrowserContext, loop: tuple[LiveServer, Served]
) -> None:
    findesk, _ = loop
    cid = handed_over_conversation(findesk)
    page = sign_in_and_open(context, findesk, cid)
    reply = reply_in_inbox(page, findesk, cid, "Your parcel is on its way again.")

    mark = page.locator(f'[id="{reply.id}"] .fin-receipt')
    expect(mark).to_have_text("Not yet fetched by Fin")
    page.evaluate(OBSERVE)
    assert page.evaluate("key => window.__appeared[key]", f"{reply.id}:seen") is None, (
        "Fin fetched the reply before the page could watch for it"
    )

    expect(mark).to_have_text("Fin has it")
    expect(mark).to_have_attribute("data-fin-receipt", "seen")
    shown = appeared_at(page, f"{reply.id}:seen")

    # The ledger's call: the emulator's get_messages that returned the reply.
    fetches = [
        call
        for call in calls(
            findesk, FinCall.operation == "get_messages", FinCall.conversation_id == cid
        )
        if reply.id in call.message_ids
    ]
    assert fetches, "no get_messages returned the reply"
    fetched_at = fetches[0].at
    assert message(findesk, reply.id).seen_by_fin_at == fetched_at
    delay = (shown - fetched_at).total_seconds()
    assert 0 <= delay <= 1.0, f"the mark changed {delay:.3f} s after Fin's fetch"
    expect(mark).to_have_attribute("title", re.compile(r"Fin fetched this reply at \d{4}-"))


def test_with_the_webhook_key_wrong_the_banner_appears_after_the_window_and_metrics_count_it(
    context: BrowserContext, tmp_path: Path
) -> None:
    findesk, emulator = findesk_and_emulator(
        f"sqlite:///{tmp_path / 'findesk.db'}",
        tmp_path / "emulator",
        webhook_key=f"not-{WEBHOOK_KEY}",
        fin_fetch_alert_seconds=ALERT_SECONDS,
    )
    try:
        cid = handed_over_conversation(findesk)
        page = sign_in_and_open(context, findesk, cid)
        reply = reply_in_inbox(page, findesk, cid, "Refund approved.")
        page.evaluate(OBSERVE)
        page.evaluate("window.__sameDocument = true")

        banner = page.locator("#fin-alert .fin-alert")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(f"Fin has not fetched 1 reply within {ALERT_SECONDS:g} s")
        # The latest webhook call tells the cause: Fin refused the key.
        expect(banner).to_contain_text("HTTP 401")
        expect(banner).to_contain_text("X-Webhook-Key is missing or wrong")
        expect(banner.get_by_role("link", name="open that conversation")).to_have_attribute(
            "href", f"/inbox/conversations/{cid}"
        )
        assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
        waited = (appeared_at(page, "banner") - as_utc(reply.created_at)).total_seconds()
        assert waited >= ALERT_SECONDS, f"the banner came {waited:.2f} s after the reply"
        mark = page.locator(f'[id="{reply.id}"] .fin-receipt')
        expect(mark).to_have_attribute("data-fin-receipt", "overdue")

        until(
            lambda: metric(scrape(findesk), "findesk_fin_unfetched_replies") == 1,
            "/metrics counting the reply",
        )
        assert (
            metric(scrape(findesk), "findesk_fin_oldest_unfetched_reply_age_seconds")
            >= ALERT_SECONDS
        )
        assert message(findesk, reply.id).seen_by_fin_at is None
    finally:
        emulator.stop()
        findesk.stop()


def test_without_javascript_marks_show_on_human_replies_only_and_the_banner_names_the_cause(
    browser: Browser, tmp_path: Path
) -> None:
    findesk = LiveServer(
        f"sqlite:///{tmp_path / 'findesk.db'}", {"fin_fetch_alert_seconds": ALERT_SECONDS}
    ).start()  # no webhook: Fin is not configured
    context = browser.new_context(java_script_enabled=False)
    try:
        cid = handed_over_conversation(findesk)
        with findesk.agent_http(f"bo-{uuid.uuid4().hex[:6]}@example.com", "Bo Agent") as agent:
            reply = agent.post(f"/conversations/{cid}/messages", json={"body": "<p>On it.</p>"})
            note = agent.post(
                f"/conversations/{cid}/messages",
                json={"body": "<p>Check the courier.</p>", "visibility": "private"},
            )
        reply_id, note_id = reply.json()["id"], note.json()["id"]
        page = sign_in_and_open(context, findesk, cid)

        marks = page.locator(".thread .fin-receipt")
        expect(marks).to_have_count(1)  # not on the end user's, Fin's or the private note
        mark = page.locator(f'[id="{reply_id}"] .fin-receipt')
        expect(mark).to_have_text("Not yet fetched by Fin")
        expect(page.locator(f'[id="{note_id}"] .fin-receipt')).to_have_count(0)

        banner = page.locator("#fin-alert .fin-alert")

        def banner_shown() -> bool:
            page.reload()
            return banner.count() == 1

        until(banner_shown, "the banner after the alert window")
        expect(banner).to_contain_text("Fin is not configured")
        page.reload()  # the thread was rendered a moment before the banner: look again
        expect(mark).to_have_attribute("data-fin-receipt", "overdue")

        assert findesk.fin_world().api.get_messages(cid).ok
        until(lambda: message(findesk, reply_id).seen_by_fin_at is not None, "the receipt")
        page.reload()
        expect(mark).to_have_text("Fin has it")
        expect(banner).to_have_count(0)
    finally:
        context.close()
        findesk.stop()
