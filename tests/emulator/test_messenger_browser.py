"""The Messenger in a real Chromium, as an end user meets it, against the emulator wired to a live
findesk: one screen at a time, an agent's attachments (a picture inline, a file as a link) that
came through Fin's sync, the typing indicator going when the reply lands, a resolved
conversation, and a first load with no failed request.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loop_support import Loop, start_loop
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect
from support.screenshots import save

from findesk.agents.service import create_agent

PASSWORD = "correct horse battery staple"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    # A typing indicator that would stay for minutes: only the reply landing can take it away.
    wired = start_loop(tmp_path_factory.mktemp("loop"), typing_seconds=600.0)
    yield wired
    wired.stop()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def png(width: int, height: int) -> bytes:
    """A valid one-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = (b"\x00" + bytes((29, 78, 216)) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Watched:
    """What went wrong in a page: failed responses and console errors."""

    def __init__(self, page: Page) -> None:
        self.failed: list[str] = []
        self.console: list[str] = []
        page.on("response", self._response)
        page.on("console", lambda m: m.type == "error" and self.console.append(m.text))

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.request.method} {response.url}")


def open_messenger(loop: Loop, browser: Browser, contexts: list[BrowserContext]) -> Page:
    context = browser.new_context(viewport=PHONE)
    contexts.append(context)
    return context.new_page()


def screens_shown(page: Page) -> list[str]:
    return page.evaluate(
        "[...document.querySelectorAll('main > section')]"
        ".filter((s) => s.checkVisibility()).map((s) => s.id)"
    )


def introduce(page: Page, name: str, email: str) -> None:
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Start chatting").click()
    expect(page.locator("#thread")).to_be_visible()


def ask(page: Page, text: str) -> str:
    """Start a conversation; its id once Fin has answered."""
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(".message.from-fin")).to_have_count(1)
    return page.evaluate("decodeURIComponent(location.hash.slice(1))")


def new_agent(loop: Loop, name: str, alias: str) -> str:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:6]}@example.com"
    with loop.findesk.db.transaction() as session:
        create_agent(session, email=email, name=name, alias=alias, password=PASSWORD)
    return email


def test_first_load_shows_one_screen_and_no_request_fails(
    loop: Loop, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = open_messenger(loop, browser, contexts)
    watched = Watched(page)
    with page.expect_response(re.compile(r"/messenger/api/visitor$")) as asked:
        page.goto(f"{loop.emulator.base_url}/messenger")
    assert asked.value.status == 204  # nobody yet: not an error
    expect(page.get_by_role("button", name="Start chatting")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert screens_shown(page) == ["intro"]
    assert watched.failed == [] and watched.console == []

    introduce(page, "Lea Moreau", "lea@example.com")
    assert screens_shown(page) == ["thread"]
    ask(page, "How long do refunds take?")
    page.get_by_role("button", name="← All conversations").click()
    expect(page.get_by_role("heading", name="Your conversations")).to_be_visible()
    assert screens_shown(page) == ["home"]

    # Coming back: the visitor is known, the list shows; nothing fails on the way.
    page.reload()
    expect(page.locator("#conversations li")).to_have_count(1)
    page.wait_for_load_state("networkidle")
    assert screens_shown(page) == ["home"]
    assert watched.failed == [] and watched.console == []


def test_an_agents_reply_with_attachments_reaches_the_messenger(
    loop: Loop, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    messenger = open_messenger(loop, browser, contexts)
    watched = Watched(messenger)
    messenger.goto(f"{loop.emulator.base_url}/messenger")
    introduce(messenger, "Tom Baker", "tom@example.com")
    cid = ask(messenger, "How long do refunds take?")
    fin = messenger.locator(".message.from-fin")
    expect(fin.locator(".name")).to_have_text("Fin")
    expect(fin.locator(".badge")).to_have_text("AI agent")
    messenger.get_by_role("button", name="Talk to a person").click()
    expect(messenger.locator("#status")).to_contain_text("passed this to the team")

    # The agent answers in findesk's inbox with a picture and a text file.
    email = new_agent(loop, "Maria Human", "Maria")
    agent = browser.new_context(viewport={"width": 1280, "height": 860})
    contexts.append(agent)
    inbox = agent.new_page()
    inbox.goto(f"{loop.findesk.base_url}/login")
    inbox.get_by_label("Email").fill(email)
    inbox.get_by_label("Password").fill(PASSWORD)
    inbox.get_by_role("button", name="Sign in").click()
    expect(inbox).to_have_url(re.compile(r"/inbox(\?|$)"))
    inbox.goto(f"{loop.findesk.base_url}/inbox/conversations/{cid}")
    (tmp_path / "invoice.png").write_bytes(png(240, 160))
    (tmp_path / "notes.txt").write_bytes(b"Refund reference RF-2041.\n")
    inbox.get_by_role("textbox", name="Message").click()
    inbox.keyboard.type("Here is your corrected invoice.")
    expect(messenger.locator("#typing")).to_have_text("Maria is typing…")
    inbox.set_input_files(
        "input[name=files]", [str(tmp_path / "invoice.png"), str(tmp_path / "notes.txt")]
    )
    inbox.get_by_role("button", name="Send").click()

    # Fin's sync pulls it; the Messenger shows it, from Maria, and her typing has gone.
    reply = messenger.locator(".message.from-agent")
    expect(reply).to_contain_text("Here is your corrected invoice.")
    expect(messenger.locator("#typing")).to_be_hidden()
    expect(reply.locator(".name")).to_have_text("Maria")
    expect(reply.locator(".avatar")).to_have_text("M")  # no photo: her initials
    expect(reply.locator("time")).to_have_attribute(
        "datetime", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
    )
    expect(reply.locator("time")).to_have_text(re.compile(r"\d{1,2}[:.]\d\d"))

    picture = reply.get_by_role("img", name="invoice.png")
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("src", re.compile(rf"^{loop.findesk.base_url}/files/"))
    picture.evaluate("img => img.decode()")  # loaded: the page's CSP lets it in
    assert picture.evaluate("img => img.naturalWidth") == 240
    shown_width = picture.evaluate("img => img.getBoundingClientRect().width")
    assert shown_width <= PHONE["width"]  # sized to fit
    assert messenger.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    document = reply.get_by_role("link", name=re.compile("notes.txt"))
    expect(document).to_have_attribute("href", re.compile(r"/files/.+/notes\.txt$"))
    expect(document).to_have_attribute("rel", "noopener noreferrer")
    expect(document).to_contain_text("txt")
    assert watched.failed == [] and watched.console == []
    save(messenger, "messenger-attachment.png")


def test_a_resolved_conversation_says_so_and_writing_again_reopens_it(
    loop: Loop, browser: Browser, contexts: list[BrowserContext]
) -> None:
    messenger = open_messenger(loop, browser, contexts)
    messenger.goto(f"{loop.emulator.base_url}/messenger")
    introduce(messenger, "Noor Haddad", "noor@example.com")
    cid = ask(messenger, "How long do refunds take?")
    resolved = messenger.locator("#resolved")
    expect(resolved).to_be_hidden()

    with loop.findesk.agent_http("rui@example.com", "Rui Agent") as agent:
        changed = agent.patch(f"/conversations/{cid}", json={"status": "resolved"})
        assert changed.status_code == 200, changed.text

    expect(resolved).to_have_text("This conversation was resolved.")
    box = messenger.get_by_role("textbox", name="Message")
    expect(box).to_have_accessible_description("Writing again reopens it.")
    expect(messenger.get_by_role("button", name="Talk to a person")).to_be_hidden()
    save(messenger, "messenger-resolved.png")

    box.fill("One more thing: how long do refunds take?")
    box.press("Enter")
    expect(messenger.locator(".message.from-fin")).to_have_count(2)
    expect(resolved).to_be_hidden()
    assert _status(loop, cid) == "open"


def _status(loop: Loop, conversation_id: str) -> Any:
    from findesk.conversations.models import Conversation

    with loop.findesk.db.read_session() as session:
        conversation = session.get(Conversation, conversation_id)
        return conversation.status if conversation is not None else None
