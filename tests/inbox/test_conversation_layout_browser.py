"""The conversation pane's layout in a real headless Chromium, with a long conversation: its
header (and the actions in it) stays in view while the agent reads the thread, and the newest
message, where a conversation opens, is neither under the composer nor under the header, from a
360 px phone to a wide screen. Checked as a person would see it: ``elementFromPoint`` says what
is on top at a point."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from support.long_conversation import Long, open_long
from support.server import LiveServer
from web_support import PASSWORD, Person, new_agent, start_server

WAIT_MS = 15_000  # generous for a shared two-core machine

expect.set_options(timeout=WAIT_MS)

WIDE = {"width": 1440, "height": 900}
SIZES = [
    {"width": 360, "height": 640},
    {"width": 390, "height": 844},
    {"width": 768, "height": 1024},
    WIDE,
    # A laptop's short window: the header and the composer would leave the thread no room.
    {"width": 1280, "height": 560},
]
ACTIONS = ("Take over", "Resolve", "Close")


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("layout-browser"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def ada(server: LiveServer) -> Person:
    return new_agent(server, "Ada Agent")


@pytest.fixture
def long(server: LiveServer, ada: Person) -> Long:
    """Forty messages (all on the first page), some with attachments, some private notes;
    Fin handles it, so Take over, Resolve and Close are in its header. One for each test: a
    test may take it over."""
    fin = server.fin_world()
    try:
        return open_long(fin, server.db, 40, human_agent_id=ada.id)
    finally:
        fin.api.http.close()


@pytest.fixture
def open_at(browser: Browser, server: LiveServer, ada: Person) -> Iterator[Any]:
    opened: list[BrowserContext] = []

    def open_page(viewport: dict[str, int], path: str, **options: Any) -> Page:
        context = browser.new_context(viewport=viewport, **options)
        opened.append(context)
        page = context.new_page()
        page.goto(f"{server.base_url}/login")
        page.get_by_label("Email").fill(ada.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))
        page.goto(f"{server.base_url}{path}")
        expect(page.locator("body")).to_have_attribute("data-live", "open")
        return page

    yield open_page
    for context in opened:
        context.close()


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not rendered"
    return found


def on_top(page: Page, locator: Locator, x: float, y: float) -> str | None:
    """None if ``locator`` (or something inside it) is what a click at (x, y) would reach;
    else a description of what covers it there."""
    return (
        str(
            locator.evaluate(
                """(el, [x, y]) => {
              const hit = document.elementFromPoint(x, y);
              if (hit && (hit === el || el.contains(hit))) return "";
              if (!hit) return "nothing";
              return [hit.tagName.toLowerCase(), ...hit.classList].join(".");
            }""",
                [x, y],
            )
        )
        or None
    )


def in_view_and_clickable(page: Page, button: Locator) -> None:
    viewport = page.viewport_size
    assert viewport is not None
    where = box(button)
    name = button.inner_text()
    assert where["y"] >= 0 and where["y"] + where["height"] <= viewport["height"], (name, where)
    assert where["x"] >= 0 and where["x"] + where["width"] <= viewport["width"], (name, where)
    centre = (where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
    covered = on_top(page, button, *centre)
    assert covered is None, f"{name} is under {covered} at {centre}"


def settled(check: Any, *args: Any) -> None:
    """``check(*args)`` passes within a few seconds: once the page has settled (pictures that
    fail to load change a message's height), as a person would look at it."""
    deadline = time.monotonic() + 5
    while True:
        try:
            check(*args)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def fully_visible(page: Page, item: Locator) -> None:
    """The whole of ``item`` is in the viewport, below the sticky header and above the composer,
    and nothing covers its top or bottom edge."""
    viewport = page.viewport_size
    assert viewport is not None
    where = box(item)
    top, bottom = where["y"], where["y"] + where["height"]
    head = box(page.locator(".conversation-head"))
    composer = box(page.locator("form.composer"))
    size = f"{viewport['width']}x{viewport['height']}"
    assert top >= head["y"] + head["height"] - 1, f"{size}: under the header {head}: {where}"
    assert bottom <= composer["y"] + 1, f"{size}: under the composer {composer}: {where}"
    assert top >= 0 and bottom <= viewport["height"], f"{size}: out of view: {where}"
    x = where["x"] + min(where["width"] / 2, 40)
    for y in (top + 2, bottom - 2):
        covered = on_top(page, item, x, y)
        assert covered is None, f"{size}: the message is under {covered} at y={y} ({where})"


def conversation_path(long: Long) -> str:
    return f"/inbox/conversations/{long.id}?queue=all"


def newest(page: Page) -> Locator:
    return page.locator(".thread > li:last-child")


def actions_in_view(page: Page) -> None:
    for name in ACTIONS:
        in_view_and_clickable(page, page.get_by_role("button", name=name, exact=True))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s['width']}x{s['height']}")
def test_the_newest_message_is_in_view_and_not_under_the_composer_or_the_header(
    open_at: Any, long: Long, size: dict[str, int]
) -> None:
    page = open_at(size, conversation_path(long))
    expect(page.locator(".thread > li.message")).to_have_count(40)
    assert newest(page).get_attribute("id") == long.message_ids[-1]
    settled(fully_visible, page, newest(page))
    # The actions are in view too, where the conversation opens.
    actions_in_view(page)


@pytest.mark.parametrize("size", [SIZES[0], WIDE], ids=lambda s: f"{s['width']}x{s['height']}")
def test_the_actions_stay_in_view_while_the_thread_scrolls(
    open_at: Any, long: Long, size: dict[str, int]
) -> None:
    page = open_at(size, conversation_path(long))
    head = page.locator(".conversation-head")
    # The slot a later issue fills with the SLA's countdown: there, and hidden until then.
    expect(head.locator("[data-sla]")).to_be_hidden()
    # The top of the thread: its first message is shown whole, below the header, not under it.
    first = page.locator(".thread > li").first
    first.evaluate("el => el.scrollIntoView({ block: 'start' })")
    settled(fully_visible, page, first)
    actions_in_view(page)
    # Half-way down.
    page.locator(".thread > li").nth(20).evaluate("el => el.scrollIntoView({ block: 'center' })")
    actions_in_view(page)
    # The actions work from there.
    page.get_by_role("button", name="Take over", exact=True).click()
    expect(page.locator(".owner-line")).to_contain_text("You own this conversation.")
    settled(fully_visible, page, newest(page))


@pytest.mark.parametrize("size", [SIZES[0], WIDE], ids=lambda s: f"{s['width']}x{s['height']}")
def test_a_link_to_a_message_shows_it_below_the_header(
    open_at: Any, long: Long, size: dict[str, int]
) -> None:
    target = long.message_ids[10]
    page = open_at(size, f"{conversation_path(long)}#{target}")
    settled(fully_visible, page, page.locator(f"[id='{target}']"))
