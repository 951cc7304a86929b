"""Queue rows in a real Chromium: what an agent needs to pick the next conversation without
opening it (the newest message's first line, how long it has waited for a human since Fin
handed over), dense enough that a 1440 by 900 screen shows at least twelve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from support.a11y import assert_accessible
from support.server import LiveServer
from web_support import new_agent, signed_in_page, start_server

expect.set_options(timeout=15_000)
ROWS = 14


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("rows"))
    fin = live.fin_world()
    for n in range(ROWS):
        conversation, _ = fin.conversation(body=f"<p>Question {n}</p>", title=f"Order {n}")
        fin.fin_says(conversation["id"], f"<p>Let me find a person for order {n}.</p><p>Two</p>")
        fin.hand_over(conversation["id"])
    yield live
    live.stop()


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    agent = new_agent(server, "Rita Rows")
    opened = signed_in_page(context, server, agent)
    yield opened
    context.close()


def test_a_row_shows_the_newest_message_and_the_wait(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.base_url}/inbox?queue=waiting")
    row = page.locator(".conversation-item").filter(has_text="Order 3")
    # Fin's answer, first line only, marked as not the end user's.
    expect(row.locator(".preview")).to_have_text("↩ Let me find a person for order 3.")
    expect(row.locator(".badge.waited")).to_have_text("waiting <1m")
    assert_accessible(page, "the waiting queue with previews")


def test_twelve_rows_fit_a_1440_by_900_screen(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.base_url}/inbox?queue=waiting")
    rows = page.locator(".conversation-item")
    expect(rows).to_have_count(ROWS)
    bottoms = [box["y"] + box["height"] for box in (r.bounding_box() for r in rows.all()) if box]
    assert sum(bottom <= 900 for bottom in bottoms) >= 12, bottoms
