"""The Messenger (the end user's side of the emulator) passes axe-core's check in a real
Chromium, with no serious or critical violation, on each of its screens: the introduction, a
conversation Fin answered, the list of conversations; in the light and the dark colour scheme
and at phone width."""

from __future__ import annotations

from typing import Literal

import pytest
from loop_support import Loop
from playwright.sync_api import Browser, expect
from support.a11y import assert_accessible

expect.set_options(timeout=15_000)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_messenger_screen_passes_the_accessibility_check(
    browser: Browser, loop: Loop, scheme: Literal["light", "dark"]
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{loop.emulator.base_url}/messenger")
        expect(page.get_by_role("button", name="Start chatting")).to_be_visible()
        assert_accessible(page, "the introduction")

        page.get_by_label("Name").fill("Ana Silva")
        page.get_by_label("Email").fill(f"ana-{scheme}@example.com")
        page.get_by_role("button", name="Start chatting").click()
        page.get_by_role("textbox", name="Message").fill("How long do refunds take?")
        page.get_by_role("button", name="Send").click()
        expect(page.locator(".message.from-fin")).to_contain_text("5 business days")
        assert_accessible(page, "a conversation Fin answered")

        page.get_by_role("button", name="All conversations").click()
        expect(page.locator("#conversations li")).to_have_count(1)
        assert_accessible(page, "the list of conversations")
    finally:
        context.close()
