"""Issue 17 end to end, with real processes (`findesk demo`: findesk and the Fin emulator), a
real SMTP server and Chromium: Alex (a member of the demo's Billing team) signs in to the inbox,
which makes him online; an end user asks the Messenger about a double charge and for a person;
the emulated Fin detects a billing question and hands over with the tag ``billing``; the demo's
routing rule puts the conversation in the Billing team's queue, given to Alex, the online
member; the inbox shows it there with the SLA timer of the team's policy, Alex gets the email
that it is his, and his reply reaches the Messenger and meets the first-response target."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect
from support import screenshots
from support.demo import running_demo, sign_in
from support.smtp import SmtpServer


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[dict[str, Any]]:
    settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "false"}
    with running_demo(tmp_path_factory.mktemp("routing-demo"), settings) as info:
        yield info


def test_a_billing_handover_reaches_the_billing_teams_online_agent(
    demo, smtp: SmtpServer, browser: Browser
) -> None:
    api = httpx.Client(
        base_url=f"{demo['helpdesk_url']}/api/v1",
        headers={"Authorization": f"Bearer {demo['agent_token']}"},
        timeout=30,
    )
    billing = next(t for t in api.get("/teams").json() if t["name"] == "Billing")
    assert api.get("/me/presence").json()["presence"] == "offline"  # agents start offline

    agent = browser.new_context(viewport={"width": 1280, "height": 900})
    customer = browser.new_context(viewport={"width": 480, "height": 860})
    try:
        inbox = agent.new_page()
        sign_in(inbox, demo)  # which makes Alex online
        expect(inbox.get_by_label("Your presence")).to_have_value("online")

        chat = customer.new_page()
        chat.goto(demo["messenger_url"])
        chat.get_by_label("Name").fill("Bea Costa")
        chat.get_by_label("Email").fill("bea@example.com")
        chat.get_by_role("button", name="Start chatting").click()
        box = chat.get_by_role("textbox", name="Message")
        box.fill("I was charged twice for my subscription. I want to talk to a human.")
        box.press("Enter")
        expect(chat.locator(".message.from-fin")).to_contain_text(
            "connect you with a teammate", timeout=20_000
        )

        # The Billing team's queue, every conversation of it: Bea's, given to Alex.
        inbox.goto(f"{demo['inbox_url']}?queue=all&team={billing['id']}")
        row = inbox.locator(".conversation-item", has_text="charged twice")
        expect(row).to_be_visible(timeout=20_000)
        expect(row).to_contain_text("Alex")
        row.click()
        header = inbox.locator(".conversation-head")
        expect(header).to_contain_text("You own this conversation.")
        expect(header.locator(".chip.team")).to_have_text("Billing team")
        # The demo's Billing policy: a first human reply within 30 minutes of the handover.
        chip = header.locator(".chip.sla")
        expect(chip).to_have_attribute("data-sla", "ok")
        expect(chip).to_have_text(re.compile(r"^First response in (29|30) min$"))
        screenshots.save(inbox, "inbox-routed.png")
        thread = inbox.locator("article.conversation")
        expect(thread).to_contain_text(
            "Routing rule “Billing questions to the Billing team” matched"
        )
        expect(thread).to_contain_text("findesk put it in the Billing team's queue")

        assert smtp.wait_until(
            lambda s: any("charged twice" in m.part("plain") for m in s.to(demo["agent_email"]))
        ), "Alex was not emailed"
        mine = [m for m in smtp.to(demo["agent_email"]) if "charged twice" in m.part("plain")]
        assert mine[0].subject.startswith("Assigned to you: I was charged twice")
        assert "/inbox/conversations/" in mine[0].part("plain")

        # Alex answers: the first-response target is met, the chip moves to the next target.
        composer = inbox.locator("form.composer")
        composer.get_by_role("textbox", name="Message").fill("Refunding the second charge now.")
        composer.get_by_role("button", name="Send").click()
        expect(chat.locator(".message").last).to_contain_text("Refunding the second charge")
        expect(chip).not_to_contain_text("First response")
    finally:
        agent.close()
        customer.close()
