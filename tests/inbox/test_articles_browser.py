"""The knowledge base pages in a real headless Chromium: an agent writes a Markdown article,
watches the live preview render it, publishes it and finds it published in the list.

Nothing sleeps: Playwright's ``expect`` waits for what the agent would see. "Without a reload"
is checked with a marker set on ``window``, which any navigation would erase.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from support.server import LiveServer
from web_support import PASSWORD, Person, new_agent, start_server, unique

from findesk.knowledge.models import Article

WAIT_MS = 15_000  # generous for a shared two-core machine; passing runs take far less

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # No publisher: Fin's Content Library is not what these tests look at.
    live = start_server(
        request, "sqlite", tmp_path_factory.mktemp("kb-browser"), kb_publish_in_process=False
    )
    yield live
    live.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800})
    yield opened
    opened.close()


def sign_in(context: BrowserContext, server: LiveServer, person: Person) -> Page:
    page = context.new_page()
    page.goto(f"{server.base_url}/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))
    return page


def test_an_agent_writes_a_markdown_article_with_a_live_preview_and_publishes_it(
    context: BrowserContext, server: LiveServer
) -> None:
    agent = new_agent(server, "Wren Writer")
    page = sign_in(context, server, agent)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    page.get_by_role("banner").get_by_role("link", name="Articles").click()
    expect(page.get_by_role("heading", name="Articles", exact=True)).to_be_visible()
    page.get_by_role("link", name="New article").click()
    expect(page.get_by_role("heading", name="New article")).to_be_visible()

    # With JavaScript the preview follows the typing, so the no-JS Preview button steps aside.
    expect(page.get_by_role("button", name="Preview")).to_be_hidden()
    page.evaluate("window.__findeskTestMarker = 'same page'")
    title = unique("Refund times")
    page.get_by_label("Title").fill(title)
    expect(page.get_by_label("Format")).to_have_value("markdown")
    body = page.get_by_label("Body")
    body.fill("## When\n\nRefunds take **five days**.\n\n<script>window.__hacked = 1</script>")
    preview = page.locator("#article-preview")
    expect(preview.locator("b")).to_have_text("five days")
    expect(preview.locator("h2")).to_have_text("When")
    expect(preview.locator("script")).to_have_count(0)
    body.press("End")
    body.type("\n\n*Thanks*")
    expect(preview.locator("i")).to_have_text("Thanks")
    assert page.evaluate("window.__findeskTestMarker") == "same page", "the preview reloaded"
    assert page.evaluate("window.__hacked") is None

    page.get_by_role("button", name="Publish").click()
    expect(page).to_have_url(re.compile(r"/inbox/articles/art_\w+\?notice=published$"))
    expect(page.get_by_role("status")).to_have_text("Published.")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    meta = page.locator("aside.article-meta")
    expect(meta.locator(".badge[data-state]")).to_have_text("published")

    article_id = page.url.split("/inbox/articles/")[1].split("?")[0]
    with server.db.read_session() as session:
        article = session.get(Article, article_id)
        assert article is not None
        assert (article.state, article.body_format) == ("published", "markdown")
        assert "<b>five days</b>" in article.body_html and "script" not in article.body_html
    public_url = f"{server.base_url}/help/{article.slug}"
    expect(meta.get_by_role("link", name=public_url)).to_have_attribute("href", public_url)

    page.get_by_role("link", name="All articles").click()
    row = page.locator(f'tr.article-item[data-article-id="{article_id}"]')
    expect(row.get_by_role("link", name=title)).to_be_visible()
    expect(row.locator(".badge[data-state]")).to_have_text("published")
    expect(row.locator(".fin-status")).to_have_text("Pending")
    page.get_by_role("link", name=re.compile(r"^Published")).click()
    expect(page.locator(f'tr.article-item[data-article-id="{article_id}"]')).to_be_visible()

    # Deleting asks first, then the article is gone from the list.
    row.get_by_role("link", name=title).click()
    page.get_by_text("Delete…").click()
    page.get_by_role("button", name="Delete this article").click()
    expect(page.get_by_role("status")).to_have_text("Article deleted.")
    expect(page.locator(f'tr.article-item[data-article-id="{article_id}"]')).to_have_count(0)
    assert errors == []
