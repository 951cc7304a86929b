"""The whole loop as a person meets it: `findesk demo` (what `make run` starts: findesk and the
Fin emulator, two real processes wired together) driven by a real headless Chromium.

An end user asks in the Messenger and Fin answers from a published article, citing it; they ask
for a person; the conversation shows in the inbox as waiting; the agent types (the Messenger shows
it) and replies; the reply appears in the Messenger. The screenshots in the README come from here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from support.demo import running_demo, sign_in
from support.screenshots import save

QUESTION = "How long do refunds take?"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_demo(tmp_path_factory.mktemp("demo")) as info:
        yield info


def test_the_demo_publishes_its_articles_to_fin_before_it_says_ready(demo) -> None:
    assert demo["articles_in_fin"] is True
    assert demo["messenger_url"].endswith("/messenger")


def test_question_answer_handover_and_human_reply(demo, browser: Browser) -> None:
    user = browser.new_context(viewport={"width": 480, "height": 860})
    agent = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        messenger = user.new_page()
        messenger.goto(demo["messenger_url"])
        messenger.get_by_label("Name").fill("Jamie Rivera")
        messenger.get_by_label("Email").fill("jamie@example.com")
        messenger.get_by_role("button", name="Start chatting").click()

        # A question; Fin answers from the published article and cites it.
        box = messenger.get_by_role("textbox", name="Message")
        box.fill(QUESTION)
        box.press("Enter")
        answer = messenger.locator(".message.from-fin").last
        try:
            expect(answer).to_contain_text("5 business days")
        except AssertionError as exc:
            # Seen once in CI, not understood: the first conversation POST refused with "Say
            # who you are first" just after the visitor was created. Say what there was.
            cookies = [(c["name"], c["path"]) for c in user.cookies()]
            log_tail = (Path(demo["logs"]) / "emulator.log").read_text()[-3000:]
            raise AssertionError(f"{exc}\ncookies: {cookies}\nemulator log:\n{log_tail}") from None
        citation = answer.get_by_role("link", name="Refunds and double charges")
        expect(citation).to_have_attribute("href", re.compile(r"/help/refunds-and-double-charges$"))
        mine = messenger.locator(".message.from-you")
        expect(mine.locator(".bubble")).to_have_text([QUESTION])
        expect(mine.locator(".name")).to_have_text(["You"])
        save(messenger, "messenger-answer.png")

        # The cited page is the public help centre's.
        cited = user.new_page()
        cited.goto(citation.get_attribute("href") or "")
        expect(cited.locator("h1")).to_contain_text("Refunds and double charges")
        cited.close()

        # The end user asks for a person: Fin hands over.
        messenger.get_by_role("button", name="Talk to a person").click()
        expect(messenger.locator("#status")).to_contain_text("passed this to the team")

        # The agent signs in and finds it waiting.
        inbox = agent.new_page()
        sign_in(inbox, demo)
        item = inbox.locator(".conversation-item").filter(has_text="Jamie Rivera")
        expect(item).to_have_count(1)
        expect(item.locator(".badge.owner")).to_have_text(re.compile(r"^waiting (<1m|\d+m)$"))
        item.get_by_role("link").click()
        expect(inbox.locator(".owner-line")).to_contain_text("Waiting for a human")
        expect(inbox.locator(".thread")).to_contain_text("talk to a person")

        # Typing reaches the Messenger through the webhook.
        reply_box = inbox.get_by_role("textbox", name="Message")
        reply_box.click()
        inbox.keyboard.type("Hi Jamie, I can help with that refund.")
        expect(messenger.locator("#typing")).to_have_text("Alex is typing…")
        save(messenger, "messenger-typing.png")
        save(inbox, "inbox-handover.png")
        inbox.get_by_role("button", name="Send").click()

        # The reply appears in the Messenger, from the agent, and the typing goes.
        reply = messenger.locator(".message.from-agent")
        expect(reply).to_contain_text("I can help with that refund")
        expect(reply.locator(".name")).to_have_text("Alex")  # the alias end users see
        expect(messenger.locator("#status")).to_contain_text("talking with a teammate")
        save(messenger, "messenger-human-reply.png")
    finally:
        user.close()
        agent.close()


def test_an_article_published_in_the_inbox_is_answered_from_within_seconds(
    demo, browser: Browser
) -> None:
    agent = browser.new_context(viewport={"width": 1280, "height": 860})
    user = browser.new_context(viewport={"width": 480, "height": 860})
    try:
        inbox = agent.new_page()
        sign_in(inbox, demo)
        inbox.get_by_role("banner").get_by_role("link", name="Articles").click()
        inbox.get_by_role("link", name="New article").click()
        inbox.get_by_label("Title").fill("Shipping to Portugal")
        inbox.get_by_label("Body").fill(
            "We ship to **Portugal** with CTT Expresso: parcels arrive in 3 to 4 working days "
            "and shipping is free above 60 euros."
        )
        expect(inbox.locator("#article-preview b")).to_have_text("Portugal")
        inbox.get_by_role("button", name="Publish").click()
        expect(inbox.get_by_role("status")).to_have_text("Published.")
        published_at = time.monotonic()
        meta = inbox.locator("aside.article-meta")
        public_url = meta.locator('a[href*="/help/"]').get_attribute("href")
        assert public_url and public_url.endswith("/help/shipping-to-portugal")
        # The agent reloads the page (it does not refresh itself) to see Fin's copy written.
        deadline = time.monotonic() + 15
        while "Published to Fin" not in meta.inner_text():
            assert time.monotonic() < deadline, meta.inner_text()
            inbox.reload()
        in_fin = time.monotonic() - published_at

        messenger = user.new_page()
        messenger.goto(demo["messenger_url"])
        messenger.get_by_label("Name").fill("Rita Sousa")
        messenger.get_by_label("Email").fill("rita@example.com")
        messenger.get_by_role("button", name="Start chatting").click()
        box = messenger.get_by_role("textbox", name="Message")
        box.fill("How long does shipping to Portugal take?")
        box.press("Enter")
        answer = messenger.locator(".message.from-fin").last
        expect(answer).to_contain_text("3 to 4 working days")
        expect(answer.get_by_role("link", name="Shipping to Portugal")).to_have_attribute(
            "href", public_url
        )
        elapsed = time.monotonic() - published_at
        assert elapsed < 15, f"answered {elapsed:.1f} s after publishing"
        print(f"published → in Fin's library {in_fin:.2f} s → answered {elapsed:.2f} s")
    finally:
        agent.close()
        user.close()


def test_a_german_translation_is_answered_in_german_and_the_english_from_external_pages(
    demo, browser: Browser
) -> None:
    agent = browser.new_context(viewport={"width": 1280, "height": 900})
    user = browser.new_context(viewport={"width": 480, "height": 860}, locale="de-DE")
    try:
        inbox = agent.new_page()
        sign_in(inbox, demo)
        inbox.goto(f"{demo['inbox_url']}/articles")
        inbox.get_by_role("link", name="New article").click()
        inbox.get_by_label("Title").fill("Returns by post")
        inbox.get_by_label("Body").fill(
            "Send your return by post with the prepaid label from your order email."
        )
        inbox.get_by_role("button", name="Publish").click()
        expect(inbox.get_by_role("status")).to_have_text("Published.")
        english_url = inbox.locator('aside.article-meta a[href*="/help/"]').get_attribute("href")
        article_url = inbox.url

        inbox.get_by_label("Add a translation").select_option("de")
        inbox.get_by_role("button", name="Write").click()
        inbox.get_by_label("Title").fill("Rücksendung per Post")
        inbox.get_by_label("Body").fill(
            "Schicken Sie Ihre Rücksendung per Post mit dem vorfrankierten Etikett aus der "
            "Bestellbestätigung."
        )
        inbox.get_by_role("button", name="Publish").click()
        # findesk's publisher sends the article with its German content to Intercom's Articles
        # API; the agent reloads the article to see it arrive.
        inbox.goto(article_url)
        german = inbox.locator('tr.translation-item[data-locale="de"] [data-intercom]')
        deadline = time.monotonic() + 20
        while german.get_attribute("data-intercom") != "published":
            assert time.monotonic() < deadline, german.inner_text()
            inbox.reload()
        meta = inbox.locator("aside.article-meta")
        while "Published to Fin" not in meta.inner_text():  # the English one: an external page
            assert time.monotonic() < deadline, meta.inner_text()
            inbox.reload()

        messenger = user.new_page()
        messenger.goto(demo["messenger_url"])
        messenger.get_by_label("Name").fill("Jonas Weber")
        messenger.get_by_label("Email").fill("jonas@example.com")
        messenger.get_by_role("button", name="Start chatting").click()
        box = messenger.get_by_role("textbox", name="Message")
        box.fill("Wie schicke ich meine Rücksendung per Post?")
        box.press("Enter")
        answer = messenger.locator(".message.from-fin").last
        expect(answer).to_contain_text("vorfrankierten Etikett")
        expect(answer).to_contain_text("Quelle:")
        cited = answer.get_by_role("link", name="Rücksendung per Post")
        expect(cited).to_have_attribute("href", re.compile(r"/help/de/"))

        box.fill("How do I send my return by post?")
        box.press("Enter")
        english = messenger.locator(".message.from-fin").last
        expect(english).to_contain_text("prepaid label")
        expect(english.get_by_role("link", name="Returns by post")).to_have_attribute(
            "href", english_url or ""
        )
    finally:
        agent.close()
        user.close()


def test_the_reports_show_the_demos_four_weeks(demo, browser: Browser) -> None:
    """The demo's past month in the reports page, on a desktop and on a phone in the dark: the
    README's pictures of it."""
    for width, scheme, picture in (
        (1280, "light", "reports.png"),
        (375, "dark", "reports-dark.png"),
    ):
        context = browser.new_context(
            viewport={"width": width, "height": 1280}, color_scheme=scheme
        )
        try:
            page = context.new_page()
            sign_in(page, demo)
            page.goto(f"{demo['inbox_url']}/reports")
            expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
            points = page.locator("svg.chart-series circle")
            expect(points.first).to_be_visible()
            assert points.count() >= 3 * 20  # three lines over a month of days
            resolved = page.locator("li.report-card").filter(has_text="Fin resolution rate")
            expect(resolved).to_contain_text("%")
            if scheme == "dark":
                page.evaluate("document.getElementById('report-headline').scrollIntoView()")
            save(page, picture)
        finally:
            context.close()
