"""The rating page in Chromium, as an end user meets it on a phone: readable in light and dark
mode at phone width, accessible (axe), its styles allowed by its CSP, and rating works with
JavaScript turned off. Both backends."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from inbox.web_support import start_server
from playwright.sync_api import Browser, expect
from support.a11y import assert_accessible
from support.server import LiveServer

from findesk.csat.models import CsatRating

PHONE = {"width": 360, "height": 740}
LINK = re.compile(r"/rate/(rate_[A-Za-z0-9_-]+)")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, tmp_path_factory.mktemp("rate"))
    yield live
    live.stop()


def rating_link(server: LiveServer) -> tuple[str, str]:
    """A conversation an agent resolved through the agent API, and the link Fin was given."""
    world = server.fin_world()
    created, _ = world.conversation()
    conversation_id = str(created["id"])
    world.hand_over(conversation_id)
    with server.agent_http(f"rater-{conversation_id}@example.com", "Rita Agent") as api:
        response = api.patch(f"/conversations/{conversation_id}", json={"status": "resolved"})
        assert response.status_code == 200, response.text
    messages = world.api.get_messages(conversation_id).data  # REST: a list
    [url] = [m for m in (LINK.search(str(x.get("body"))) for x in messages) if m]
    return conversation_id, f"{server.base_url}{url.group(0)}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_is_readable_on_a_phone_in_both_schemes(
    browser: Browser, server: LiveServer, scheme: str
) -> None:
    _, url = rating_link(server)
    context = browser.new_context(viewport=PHONE, color_scheme=scheme)  # type: ignore[arg-type]
    blocked: list[str] = []
    try:
        page = context.new_page()
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )
        page.goto(f"{url}?score=5")
        assert_accessible(page, f"the rating page ({scheme})")
        assert blocked == []  # the stylesheet is allowed by the page's own CSP
        # Nothing sticks out sideways at phone width.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        dark = background == "rgb(18, 22, 28)"
        assert dark == (scheme == "dark"), background
        expect(page.get_by_role("radio", name="5 Excellent")).to_be_checked()
        expect(page.get_by_role("group", name=re.compile("Your rating"))).to_be_visible()
    finally:
        context.close()


def test_rating_works_without_javascript(browser: Browser, server: LiveServer) -> None:
    conversation_id, url = rating_link(server)
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_role("radio", name="4 Good").check()
        page.get_by_label("Anything to add? (optional)").fill("Sorted in minutes.")
        page.get_by_role("button", name="Send rating").click()
        expect(page.get_by_role("status")).to_contain_text("Your rating (4/5) has been recorded")
    finally:
        context.close()
    with server.db.read_session() as session:
        rating = session.get(CsatRating, conversation_id)
        assert rating is not None
        assert (rating.score, rating.comment) == (4, "Sorted in minutes.")


def test_the_unknown_link_page_is_accessible(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        response = page.goto(f"{server.base_url}/rate/rate_unknown")
        assert response is not None and response.status == 404
        assert_accessible(page, "the unknown rating link page")
    finally:
        context.close()
