"""The web inbox in a real headless Chromium, against a live server whose notifier calls a
stand-in for Fin's webhook.

Nothing here sleeps: Playwright's ``expect`` waits for what an agent would see, the receiver
waits on a condition variable and database state is polled with ``eventually``. "Without a
reload" is checked with a marker set on ``window``: any navigation would erase it.

The last test also writes the screenshots shown in the README (``docs/inbox-*.png``), so they
always show the inbox as it is.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from support.fin import World
from support.receiver import WEBHOOK_KEY, Receiver, eventually, notifier_settings
from support.screenshots import save
from support.server import LiveServer, database_url

from findesk import demo
from findesk.agents.service import create_agent
from findesk.notifier.models import OutboxEvent

HOOK_PATH = "/hooks/standalone/custom_helpdesk_conversation_event/test-integration"
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 15_000  # generous for a shared two-core machine; passing runs take far less

expect.set_options(timeout=WAIT_MS)


# --- servers, agents and Fin ------------------------------------------------------------------


def start_server(
    request: pytest.FixtureRequest, tmp: Path, receiver: Receiver, **overrides: Any
) -> LiveServer:
    url = database_url("sqlite", request, tmp)
    live = LiveServer(
        url,
        notifier_settings(receiver, files_dir=tmp / "files", data_dir=tmp, **overrides),
    ).start()
    # The server's port is picked at start: attachment links must name it, as they would name
    # FINDESK_PUBLIC_BASE_URL in production.
    live.settings.public_base_url = live.base_url
    return live


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[LiveServer]:
    live = start_server(request, tmp_path_factory.mktemp("inbox"), receiver)
    yield live
    live.stop()


def end_user(fin: World, name: str, email: str) -> dict[str, Any]:
    # World.user() always names the user "Jane Doe".
    reply = fin.api.create_user(object_id=f"u-{uuid.uuid4().hex[:12]}", name=name, email=email)
    assert reply.status == 201, reply.error
    return dict(reply.data)


@pytest.fixture(scope="module")
def fin(server: LiveServer) -> Iterator[World]:
    world = server.fin_world()
    yield world
    world.api.http.close()


def new_agent(server: LiveServer, name: str) -> dict[str, str]:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:6]}@example.com"
    with server.db.transaction() as session:
        agent = create_agent(session, email=email, name=name, password=PASSWORD)
        return {"id": agent.id, "email": email, "name": name}


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts a test opens (one per agent); closed before the server stops."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


def open_context(
    browser: Browser,
    contexts: list[BrowserContext],
    viewport: dict[str, int] = DESKTOP,
    **options: Any,
) -> BrowserContext:
    context = browser.new_context(viewport=viewport, **options)
    contexts.append(context)
    return context


def sign_in(context: BrowserContext, base_url: str, email: str, password: str = PASSWORD) -> Page:
    """Sign in through the form, as a person would, and wait for the live feed to connect."""
    page = context.new_page()
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/inbox(\?|$)"))
    live_connected(page)
    return page


def live_connected(page: Page) -> None:
    # Changes made before the live stream is open would not be pushed to this page.
    expect(page.locator("body")).to_have_attribute("data-live", "open")


def stays_loaded(page: Page) -> None:
    """Mark the page; ``still_same_page`` fails if it was reloaded or left since."""
    page.evaluate("window.__findeskTestMarker = 'same page'")


def still_same_page(page: Page) -> None:
    assert page.evaluate("window.__findeskTestMarker") == "same page", "the page was reloaded"


def queue_item(page: Page, conversation_id: str) -> Any:
    return page.locator(
        f'#queue-area li.conversation-item[data-conversation-id="{conversation_id}"]'
    )


def count(page: Page, queue: str) -> Any:
    return page.locator(f'.sidebar [data-count="{queue}"]')


def editor(page: Page) -> Any:
    return page.get_by_role("textbox", name="Message")


def toolbar_button(page: Page, name: str) -> Any:
    return page.get_by_role("toolbar", name="Formatting").get_by_role("button", name=name)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid one-colour PNG, small enough to keep in a test."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def outbox(server: LiveServer, conversation_id: str) -> list[OutboxEvent]:
    with server.db.read_session() as session:
        rows = session.scalars(
            select(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id)
        ).all()
        session.expunge_all()
        return list(rows)


# --- 1. an agent handles a handover, end to end -----------------------------------------------


def test_an_agent_answers_a_handover_with_formatting_files_a_note_tags_and_resolves(
    browser: Browser,
    contexts: list[BrowserContext],
    server: LiveServer,
    fin: World,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    ada = new_agent(server, "Ada Lovelace")
    page = sign_in(open_context(browser, contexts), server.base_url, ada["email"])
    expect(page.get_by_role("heading", name="Waiting for a human")).to_be_visible()
    stays_loaded(page)

    # Fin starts a conversation, answers, then hands it over while the inbox is open.
    user = end_user(fin, "Grace Hopper", "grace@example.com")
    conversation, _ = fin.conversation(
        user, "<p>I was charged twice for May.</p>", title="Charged twice in May"
    )
    cid = conversation["id"]
    fin.fin_says(cid, "<p>Sorry about that! Let me get a teammate who can look at invoices.</p>")
    fin.hand_over(cid)

    item = queue_item(page, cid)
    expect(item).to_be_visible()
    expect(item).to_contain_text("Charged twice in May")
    expect(item.locator(".badge.owner")).to_have_text(re.compile(r"^waiting (<1m|\d+m)$"))
    notice = page.locator("#live-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Fin handed a conversation over")
    expect(notice.get_by_role("link", name="Open it")).to_have_attribute(
        "href", f"/inbox/conversations/{cid}"
    )
    still_same_page(page)

    # Open it and take it over.
    item.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/inbox/conversations/{cid}"))
    owner_line = page.locator(".owner-line")
    expect(owner_line).to_contain_text("Waiting for a human")
    expect(page.locator(".message.from-fin .badge.bot")).to_have_text("Bot")
    page.get_by_role("button", name="Take over").click()
    expect(owner_line).to_contain_text("You own this conversation.")

    # A reply with bold text and a link, made with the toolbar, and two files.
    message = editor(page)
    message.click()
    toolbar_button(page, "Bold").click()
    page.keyboard.type("Refund approved")
    toolbar_button(page, "Bold").click()
    page.keyboard.type(". Details: ")
    link_text = "refund policy"
    page.keyboard.type(link_text)
    for _ in link_text:
        page.keyboard.press("Shift+ArrowLeft")
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        dialog.accept("https://example.com/refunds")

    page.once("dialog", answer)
    toolbar_button(page, "Link").click()
    expect(message.locator("a")).to_have_text(link_text)
    assert prompts and "Link" in prompts[0]

    image_bytes = png(24, 16, (29, 78, 216))
    text_bytes = b"Invoice INV-2041: charged twice on 3 May.\n"
    (tmp_path / "invoice.png").write_bytes(image_bytes)
    (tmp_path / "notes.txt").write_bytes(text_bytes)
    page.set_input_files(
        "input[name=files]", [str(tmp_path / "invoice.png"), str(tmp_path / "notes.txt")]
    )
    page.get_by_role("button", name="Send").click()

    reply = page.locator(".thread .message.from-agent").filter(has_text="Refund approved")
    expect(reply.locator(".body b")).to_have_text("Refund approved")
    expect(reply.locator(".body a")).to_have_attribute("href", "https://example.com/refunds")
    expect(reply.locator(".attachments img")).to_have_attribute("alt", "invoice.png")
    expect(reply.locator(".attachments")).to_contain_text("notes.txt")
    assert reply.locator(".attachments img").evaluate("img => img.naturalWidth") == 24

    # A private note.
    page.get_by_label("Private note").check()
    editor(page).click()
    page.keyboard.type("Checked the payment provider: two charges on 3 May.")
    page.get_by_role("button", name="Send").click()
    note = page.locator(".thread .message.private")
    expect(note).to_contain_text("Checked the payment provider")
    expect(note.locator(".badge.note")).to_have_text("Private note")

    # Tags, then resolve.
    tags = page.get_by_label("Tags (comma-separated)")
    tags.fill("billing, refund")
    page.get_by_role("button", name="Save tags").click()
    expect(page.get_by_label("Tags (comma-separated)")).to_have_value("billing, refund")
    page.get_by_role("button", name="Resolve").click()
    # Resolving moves on, through the queue, saying what was done.
    expect(page.get_by_role("status").filter(has_text="Resolved.")).to_be_visible()
    page.goto(f"{server.base_url}/inbox/conversations/{cid}")
    expect(page.locator(".owner-line .status")).to_have_text("resolved")
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()

    # Fin reads it all back through its API.
    messages = fin.api.get_messages(cid)
    assert messages.status == 200, messages.error
    from_ada = [m for m in messages.data if m["author"]["id"] == ada["id"]]
    assert [m["visibility"] for m in from_ada] == ["public", "private", "public"]
    sent, private, rating_request = from_ada
    assert "/rate/rate_" in rating_request["body"]  # resolved by a person: findesk.csat asks
    assert "<b>Refund approved</b>" in sent["body"]
    assert '<a href="https://example.com/refunds"' in sent["body"]
    assert ">refund policy</a>" in sent["body"]
    assert "Checked the payment provider: two charges on 3 May." in private["body"]
    files = {a["filename"]: a for a in sent["attachments"]}
    assert set(files) == {"invoice.png", "notes.txt"}
    assert files["invoice.png"]["filetype"] == "png"
    for name, content in (("invoice.png", image_bytes), ("notes.txt", text_bytes)):
        url = files[name]["url"]
        assert url.startswith(f"{server.base_url}/files/")
        fetched = httpx.get(url)  # no credentials: the link itself is the capability
        assert fetched.status_code == 200
        assert fetched.content == content
    state = fin.api.get_conversation(cid).data
    assert (state["status"], state["tags"]) == ("resolved", ["billing", "refund"])
    assert state["assignee"]["id"] == ada["id"]

    # The notifier told Fin about every change: each event delivered, with the webhook key.
    assert eventually(lambda: {e.state for e in outbox(server, cid)} == {"delivered"})
    events = outbox(server, cid)
    # (the third message: the rating request findesk.csat writes when a person resolves)
    assert sorted(e.reason for e in events) == [
        "assignee",
        "message",
        "message",
        "message",
        "status",
        "tags",
    ]
    syncs = [r for r in receiver.for_conversation(cid) if "event_type" not in r.body]
    assert syncs
    for hit in syncs:
        assert hit.path == HOOK_PATH
        assert hit.headers["X-Webhook-Key"] == WEBHOOK_KEY
        assert hit.body == {"conversation_id": cid}
    assert {e.delivery_id for e in events} <= {h.headers["X-Findesk-Delivery"] for h in syncs}
    # Writing in the composer told Fin that Ada was typing.
    assert receiver.wait_until(
        lambda got: any(r.conversation_id == cid and r.body.get("event_type") for r in got)
    ), "no agent_typing event reached Fin"
    typing = [r for r in receiver.for_conversation(cid) if r.body.get("event_type")]
    assert typing[0].body["event_type"] == "agent_typing"
    assert typing[0].body["data"]["agent"]["email"] == ada["email"]


# --- 2. a second agent watches it happen ------------------------------------------------------


def test_another_agent_sees_the_reply_and_the_queue_counts_live(
    browser: Browser, contexts: list[BrowserContext], server: LiveServer, fin: World
) -> None:
    ada, ben = new_agent(server, "Ada Byron"), new_agent(server, "Ben Okafor")
    conversation, _ = fin.conversation(title="Cannot export my invoices")
    cid = conversation["id"]
    fin.hand_over(cid)

    watcher = sign_in(open_context(browser, contexts), server.base_url, ben["email"])
    watcher.goto(f"{server.base_url}/inbox/conversations/{cid}?queue=waiting")
    live_connected(watcher)
    expect(queue_item(watcher, cid)).to_be_visible()
    waiting = int(count(watcher, "waiting").inner_text())
    everything = int(count(watcher, "all").inner_text())
    # Ben has started a reply of his own: live updates must not wipe it.
    editor(watcher).click()
    watcher.keyboard.type("Draft by Ben")
    stays_loaded(watcher)

    actor = sign_in(open_context(browser, contexts), server.base_url, ada["email"])
    actor.goto(f"{server.base_url}/inbox/conversations/{cid}")
    actor.get_by_role("button", name="Take over").click()
    expect(actor.locator(".owner-line")).to_contain_text("You own this conversation.")

    expect(watcher.locator(".owner-line")).to_contain_text("Ada Byron owns this conversation.")
    expect(count(watcher, "waiting")).to_have_text(str(waiting - 1))
    expect(queue_item(watcher, cid)).to_have_count(0)

    editor(actor).click()
    actor.keyboard.type("Hi! I can export them for you right now.")
    actor.get_by_role("button", name="Send").click()
    expect(actor.locator(".thread")).to_contain_text("I can export them for you right now.")

    reply = watcher.locator(".thread .message.from-agent")
    expect(reply).to_contain_text("I can export them for you right now.")
    expect(reply.locator(".message-head")).to_contain_text("Ada Byron")

    # Fin hands another conversation over: Ben's counts follow.
    other, _ = fin.conversation(title="Where is my order?")
    expect(count(watcher, "all")).to_have_text(str(everything + 1))
    fin.hand_over(other["id"])
    expect(count(watcher, "waiting")).to_have_text(str(waiting))
    expect(queue_item(watcher, other["id"])).to_be_visible()

    expect(editor(watcher)).to_have_text("Draft by Ben")
    still_same_page(watcher)


# --- 3. screenshots for the README ------------------------------------------------------------

MORE_CONVERSATIONS = [
    # (name, email, title, question, Fin's answer or None, handed over)
    (
        "Omar Haddad",
        "omar@example.com",
        "Can't sign in after a password reset",
        "<p>I reset my password but the login page still says it's wrong.</p>",
        "<p>Let me bring in a teammate who can check your account.</p>",
        True,
    ),
    (
        "Lena Fischer",
        "lena@example.com",
        "Change the address on my invoices",
        "<p>Our company moved. Can the invoices show the new address?</p>",
        "<p>A teammate can update past invoices for you; I've passed this on.</p>",
        True,
    ),
    (
        "Kenji Sato",
        "kenji@example.com",
        "Does the API have rate limits?",
        "<p>How many requests per minute can we make?</p>",
        "<p>Up to <b>600 requests per minute</b> per workspace.</p>",
        False,
    ),
]

INVOICE_HTML = """<!doctype html><html><body style="margin:0;font:14px system-ui,sans-serif">
<div id="invoice" style="width:360px;padding:16px 20px;background:#fff;border:1px solid #d9dee5">
<div style="display:flex;justify-content:space-between;align-items:baseline">
<strong style="font-size:18px">Acme Analytics</strong>
<span style="color:#556170">INV-2041</span></div>
<p style="color:#556170;margin:4px 0 12px">Corrected invoice · Sam Lee · May</p>
<table style="width:100%;border-collapse:collapse">
<tr><td>Pro plan, 12 seats</td><td style="text-align:right">$348.00</td></tr>
<tr><td>Duplicate charge</td>
<td style="text-align:right;color:#15803d">&minus;$348.00 refunded</td></tr>
<tr><td style="border-top:1px solid #d9dee5;padding-top:6px"><b>Total charged</b></td>
<td style="border-top:1px solid #d9dee5;padding-top:6px;text-align:right"><b>$348.00</b></td></tr>
</table></div></body></html>"""


@pytest.fixture(scope="module")
def demo_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[tuple[LiveServer, demo.DemoCredentials, World]]:
    """A server holding ``make run``'s demo data, so the screenshots show what users will see."""
    live = start_server(request, tmp_path_factory.mktemp("demo"), receiver)
    with live.db.transaction() as session:
        credentials = demo.seed(session, live.settings.fin_agent_email)
    world = live.fin_world()
    yield live, credentials, world
    world.api.http.close()
    live.stop()


def test_screenshots_of_the_queue_and_a_conversation(
    browser: Browser,
    contexts: list[BrowserContext],
    demo_server: tuple[LiveServer, demo.DemoCredentials, World],
    tmp_path: Path,
) -> None:
    live, credentials, fin = demo_server
    handed_over_live: str | None = None
    for name, email, title, question, answer, hand_over in MORE_CONVERSATIONS:
        conversation, _ = fin.conversation(end_user(fin, name, email), question, title=title)
        fin.fin_says(conversation["id"], answer)
        if hand_over and handed_over_live is None:
            handed_over_live = conversation["id"]  # handed over while the inbox is open
        elif hand_over:
            fin.hand_over(conversation["id"])
    assert handed_over_live is not None

    # The invoice an agent attaches: rendered by the browser itself.
    scratch = open_context(browser, contexts).new_page()
    scratch.set_content(INVOICE_HTML)
    invoice = tmp_path / "invoice-INV-2041.png"
    scratch.locator("#invoice").screenshot(path=str(invoice))
    scratch.close()

    context = open_context(browser, contexts)
    page = sign_in(context, live.base_url, credentials.agent_email, credentials.agent_password)
    fin.hand_over(handed_over_live)
    expect(queue_item(page, handed_over_live)).to_be_visible()
    expect(page.locator("#live-notice")).to_be_visible()
    expect(page.locator("#queue-area li.conversation-item")).to_have_count(3)
    expect(count(page, "waiting")).to_have_text("3")
    save(page, "inbox-queue.png")

    # Sam's double charge: take over, answer with the corrected invoice, leave a note.
    page.locator("#queue-area li.conversation-item").filter(
        has_text="Refund for a double charge"
    ).get_by_role("link").click()
    page.get_by_role("button", name="Take over").click()
    expect(page.locator(".owner-line")).to_contain_text("You own this conversation.")
    editor(page).click()
    page.keyboard.type("Sorry about that, Sam! I've refunded the duplicate charge of ")
    toolbar_button(page, "Bold").click()
    page.keyboard.type("$348.00")
    toolbar_button(page, "Bold").click()
    page.keyboard.type(". Here is the corrected invoice.")
    page.set_input_files("input[name=files]", str(invoice))
    page.get_by_role("button", name="Send").click()
    preview = page.locator(".thread .attachments img")
    expect(preview).to_be_visible()
    assert preview.evaluate("img => img.complete && img.naturalWidth > 0")
    page.get_by_label("Private note").check()
    editor(page).click()
    page.keyboard.type("The retry on 3 May charged twice; refunded in the payment provider.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".thread .message.private .badge.note")).to_be_visible()
    expect(page.locator(".thread .message.from-fin .badge.bot")).to_have_text("Bot")
    page.get_by_label("Tags (comma-separated)").fill("billing, refund")
    page.get_by_role("button", name="Save tags").click()
    expect(page.get_by_label("Tags (comma-separated)")).to_have_value("billing, refund")
    conversation_url = page.url
    # Show the latest messages, as an agent would scroll to them.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    save(page, "inbox-conversation.png")

    phone = open_context(browser, contexts, PHONE, storage_state=context.storage_state())
    phone_page = phone.new_page()
    phone_page.goto(f"{live.base_url}/inbox")
    expect(queue_item(phone_page, handed_over_live)).to_be_visible()
    fits_the_phone(phone_page)
    phone_page.goto(conversation_url)
    expect(phone_page.locator(".owner-line")).to_contain_text("You own this conversation.")
    # One column on a phone: with a conversation open, the queue steps aside.
    expect(phone_page.locator("#queue-area")).to_be_hidden()
    fits_the_phone(phone_page)
    save(phone_page, "inbox-phone.png")

    # Dark mode follows the system setting.
    dark = open_context(
        browser, contexts, color_scheme="dark", storage_state=context.storage_state()
    )
    dark_page = dark.new_page()
    dark_page.goto(conversation_url)
    expect(dark_page.locator(".owner-line")).to_contain_text("You own this conversation.")
    background = dark_page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 22, 28)", background
    dark_page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    save(dark_page, "inbox-dark.png")

    # A phone in dark mode: the header with the actions on top, the composer at the bottom and
    # the newest message between them.
    dark_phone = open_context(
        browser, contexts, PHONE, color_scheme="dark", storage_state=context.storage_state()
    )
    dark_phone_page = dark_phone.new_page()
    dark_phone_page.goto(conversation_url)
    expect(dark_phone_page.locator(".owner-line")).to_contain_text("You own this conversation.")
    expect(dark_phone_page.get_by_role("button", name="Resolve")).to_be_in_viewport()
    expect(dark_phone_page.locator(".thread > li:last-child")).to_be_in_viewport(ratio=1)
    fits_the_phone(dark_phone_page)
    save(dark_phone_page, "inbox-phone-dark.png")


def fits_the_phone(page: Page) -> None:
    """Nothing makes the page scroll sideways."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a {PHONE['width']}px phone"
