"""Saved replies and macros in a real headless Chromium, against a live server whose notifier
calls a stand-in for Fin's webhook: "/" in the composer, picked with the keyboard and filled in
for the conversation, then sent; a macro applied from the conversation's Macro menu. The page
must break no rule of its strict Content-Security-Policy.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from support.fin import World
from support.receiver import Receiver, eventually, notifier_settings
from support.server import LiveServer, database_url

from findesk.agents.service import create_agent
from findesk.notifier.models import OutboxEvent
from findesk.replies import service as replies

PASSWORD = "correct horse battery staple"
WAIT_MS = 15_000  # generous for a shared two-core machine

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("replies-browser")
    live = LiveServer(
        database_url("sqlite", request, tmp),
        notifier_settings(receiver, files_dir=tmp / "files", data_dir=tmp),
    ).start()
    live.settings.public_base_url = live.base_url
    yield live
    live.stop()


@pytest.fixture(scope="module")
def fin(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    context.close()
    assert not problems, problems


def new_agent(server: LiveServer, name: str, alias: str, role: str = "agent") -> Any:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:6]}@example.com"
    with server.db.transaction() as session:
        return create_agent(
            session, email=email, name=name, alias=alias, role=role, password=PASSWORD
        )


def sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))


def open_conversation(page: Page, base_url: str, conversation_id: str) -> None:
    page.goto(f"{base_url}/inbox/conversations/{conversation_id}")
    expect(page.locator("body")).to_have_attribute("data-live", "open")


def editor(page: Page) -> Any:
    return page.get_by_role("textbox", name="Message")


def outbox(server: LiveServer, conversation_id: str) -> list[OutboxEvent]:
    with server.db.read_session() as session:
        return list(
            session.scalars(
                select(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id)
            )
        )


def test_slash_inserts_a_saved_reply_filled_in_for_the_conversation(
    page: Page, server: LiveServer, fin: World
) -> None:
    ada = new_agent(server, "Ada Lovelace", alias="Ada", role="admin")
    with server.db.transaction() as session:
        for title, body in (
            ("Shipping delay", "<p>Sorry, {{user.name}}: parcels are late this week.</p>"),
            (
                "Refund approved",
                "<p>Hi {{user.name}}, {{agent.alias}} here: the refund for "
                "{{conversation.attributes.order|your order}} is on its way.</p>",
            ),
            ("Refund refused", "<p>Sorry {{user.name|there}}, no refund.</p>"),
        ):
            replies.create_reply(session, ada, title=title, body=body, shared=True)
    user = fin.user(name="Grace Hopper", email="grace@example.com")
    cid = fin.open(user["id"], title="Charged twice")["conversation"]["id"]
    fin.update(cid, attributes={"order": "A-1042"})
    fin.hand_over(cid)

    sign_in(page, server.base_url, ada.email)
    open_conversation(page, server.base_url, cid)
    message = editor(page)
    message.click()
    page.keyboard.type("Hello! /")
    listbox = page.get_by_role("listbox", name="Saved replies")
    expect(listbox).to_be_visible()
    expect(listbox.get_by_role("option")).to_have_count(3)
    # Esc closes the list and leaves the text as typed.
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(message).to_have_text("Hello! /")

    page.keyboard.type("ref")
    expect(listbox).to_be_visible()
    options = listbox.get_by_role("option")
    expect(options).to_have_text([re.compile("^Refund approved"), re.compile("^Refund refused")])
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(message).to_have_attribute(
        "aria-activedescendant", options.nth(1).get_attribute("id") or ""
    )
    page.keyboard.press("ArrowDown")  # wraps around
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(listbox).to_be_hidden()
    filled = "Hi Grace Hopper, Ada here: the refund for A-1042 is on its way."
    expect(message).to_contain_text(filled)
    expect(message).not_to_contain_text("/ref")
    expect(message).not_to_contain_text("{{")

    page.get_by_role("button", name="Send").click()
    sent = page.locator(".thread .message.from-agent").filter(has_text=filled)
    expect(sent).to_be_visible()
    got = fin.api.get_messages(cid)
    assert got.status == 200, got.error
    bodies = [m["body"] for m in got.data if m["author"]["id"] == ada.id]
    assert len(bodies) == 1 and filled in bodies[0] and "/ref" not in bodies[0]


def test_a_macro_applied_from_the_conversation_view(
    page: Page, server: LiveServer, fin: World
) -> None:
    bea = new_agent(server, "Bea Baker", alias="Bea")
    with server.db.transaction() as session:
        thanks = replies.create_reply(
            session, bea, title="Thanks", body="<p>Thanks {{user.name}}, all sorted!</p>"
        )
        replies.create_macro(
            session,
            bea,
            name="Sort billing",
            actions=[
                {"type": "take_over"},
                {"type": "reply", "saved_reply_id": thanks.id},
                {"type": "add_tags", "tags": ["billing"]},
                {"type": "set_status", "status": "resolved"},
            ],
        )
    user = fin.user(name="Alan Turing", email="alan@example.com")
    cid = fin.open(user["id"], title="Invoice question")["conversation"]["id"]
    fin.hand_over(cid)
    before = {e.id for e in outbox(server, cid)}

    sign_in(page, server.base_url, bea.email)
    open_conversation(page, server.base_url, cid)
    expect(page.locator(".owner-line")).to_contain_text("Waiting for a human")
    page.get_by_label("Macro", exact=True).select_option(label="Sort billing")
    page.get_by_role("button", name="Apply").click()

    expect(
        page.get_by_role("status").filter(has_text="Macro “Sort billing” applied.")
    ).to_be_visible()
    expect(page.locator(".owner-line")).to_contain_text("You own this conversation.")
    expect(page.locator(".owner-line .status")).to_have_text("resolved")
    expect(page.get_by_label("Tags (comma-separated)")).to_have_value("billing")
    thread = page.locator(".thread")
    expect(thread).to_contain_text("Bea Baker applied the macro “Sort billing”")
    from_agents = thread.locator(".message.from-agent")
    expect(from_agents.first).to_contain_text("Thanks Alan Turing, all sorted!")
    # Resolved by a person: findesk asks the customer for a rating (findesk.csat).
    expect(from_agents.nth(1)).to_contain_text("How did we do? Rate this conversation:")

    # Fin was told of each change, as when done by hand, and the notifier delivered them.
    new = [e for e in outbox(server, cid) if e.id not in before]
    assert sorted(e.reason for e in new) == ["assignee", "message", "message", "status", "tags"]
    assert eventually(
        lambda: {e.state for e in outbox(server, cid) if e.id not in before} == {"delivered"}
    )
    state = fin.api.get_conversation(cid).data
    assert (state["status"], state["tags"], state["assignee"]["id"]) == (
        "resolved",
        ["billing"],
        bea.id,
    )
