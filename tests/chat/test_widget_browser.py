"""The chat widget in a real Chromium, as a visitor meets it on a company's site: the site is
another origin with a strict CSP that names only findesk's origin, and findesk's chat API is
played by a stub (`widget_stub.py`) so each behaviour can be driven exactly: Fin's replies with a
citation, typing both ways, quick replies, attachments, waiting for a person, the rating prompt,
reconnecting after a dropped stream, a signed identity, the XSS corpus, phone width, keyboard use
and the accessibility check.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from support.a11y import assert_accessible
from support.hostile import HOSTILE, NAME, TITLE
from support.screenshots import save
from widget_stub import ChatStub, Port, SitePage, user_hash

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CITATION = (
    "<p>Refunds take 5 to 7 working days.</p>"
    '<p>Source: <a href="https://help.example.com/articles/refunds">Refund policy</a></p>'
)


def wait_until(condition: Callable[[], Any], what: str, seconds: float = 10.0) -> Any:
    """Poll a condition outside the browser (the stub's records) until it holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Wired:
    def __init__(self, **config: Any) -> None:
        site_port = Port()
        self.stub = ChatStub(f"http://localhost:{site_port.number}", **config)
        self.site = SitePage(site_port, self.stub.base_url)

    def stop(self) -> None:
        self.site.stop()
        self.stub.stop()


@pytest.fixture(scope="module")
def wired() -> Iterator[Wired]:
    both = Wired()
    yield both
    both.stop()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


class Visit:
    """One visitor's page, watched for console errors and failed requests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.failed: list[str] = []
        self.urls: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.method} {r.url}"))
        page.on("request", lambda r: self.urls.append(r.url))

    @property
    def launcher(self) -> Locator:
        return self.page.locator("findesk-chat button.launcher")

    @property
    def panel(self) -> Locator:
        return self.page.get_by_role("dialog", name="Acme Support")

    @property
    def box(self) -> Locator:
        return self.panel.get_by_role("textbox", name="Message")

    @property
    def thread(self) -> Locator:
        return self.panel.locator("ol.messages")

    def open(self) -> None:
        self.launcher.click()
        expect(self.panel).to_be_visible()

    def ask(self, text: str) -> None:
        self.box.fill(text)
        self.box.press("Enter")
        expect(self.thread.locator(".message.from-user").last).to_contain_text(text)


def visit(
    wired: Wired,
    browser: Browser,
    contexts: list[BrowserContext],
    viewport: dict[str, int] = DESKTOP,
    query: str = "",
    **options: Any,
) -> Visit:
    context = browser.new_context(viewport=viewport, **options)
    contexts.append(context)
    seen = Visit(context.new_page())
    seen.page.goto(f"{wired.site.url}/{query}")
    expect(seen.launcher).to_be_visible()
    return seen


def start_conversation(wired: Wired, seen: Visit, text: str) -> str:
    """The new conversation's id, once the widget listens to the event stream."""
    before = set(wired.stub.conversation_ids())
    connects = len(wired.stub.state.stream_connects)
    seen.open()
    seen.ask(text)
    cid = wait_until(
        lambda: next(iter(set(wired.stub.conversation_ids()) - before), None),
        "the new conversation",
    )
    stream_open(wired, connects + 1)
    return str(cid)


def stream_open(wired: Wired, count: int = 1) -> None:
    wait_until(lambda: len(wired.stub.state.stream_connects) >= count, "the event stream")


def png(width: int, height: int) -> bytes:
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


# --- the flow ------------------------------------------------------------------------------------


def test_a_visitor_asks_on_another_site_and_fins_cited_answer_arrives_live(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    sessions = len(wired.stub.calls("POST", "/session"))
    seen = visit(wired, browser, contexts)
    page = seen.page
    # The site's own CSS (Comic Sans, hot pink buttons, uppercase) stays out of the shadow root.
    launcher_style = seen.launcher.evaluate(
        "b => { const s = getComputedStyle(b); return [s.backgroundColor, s.fontFamily]; }"
    )
    assert launcher_style[0] == "rgb(31, 94, 255)"
    assert "Comic Sans" not in launcher_style[1]
    expect(seen.launcher).to_have_attribute("aria-expanded", "false")
    # Nothing is asked of findesk for a visitor who never opens the chat.
    page.wait_for_load_state("networkidle")
    assert len(wired.stub.calls("POST", "/session")) == sessions

    seen.open()
    expect(seen.launcher).to_have_attribute("aria-expanded", "true")
    expect(seen.box).to_be_focused()  # straight to writing: there is nothing to list yet
    expect(seen.panel).to_contain_text("Ask us anything. Fin answers right away.")
    seen.ask("How long do refunds take?")
    cid = wait_until(lambda: wired.stub.conversation_ids(), "a conversation")[-1]
    stream_open(wired)

    wired.stub.set_state(cid, fin_state="thinking")
    expect(seen.panel.locator(".typing")).to_have_text("Fin is typing…")
    wired.stub.say(cid, CITATION)
    fin = seen.thread.locator(".message.from-fin")
    expect(fin).to_contain_text("Refunds take 5 to 7 working days.")
    expect(fin.locator(".name")).to_have_text("Fin")
    expect(fin.locator(".ai")).to_have_text("AI agent")
    source = fin.get_by_role("link", name="Refund policy")
    expect(source).to_have_attribute("href", "https://help.example.com/articles/refunds")
    expect(source).to_have_attribute("target", "_blank")
    expect(source).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    expect(seen.panel.locator(".typing")).to_have_text("")  # the answer ends Fin's typing
    # A screen reader hears it: the thread is a polite live region.
    log = seen.panel.get_by_role("log")
    expect(log).to_have_attribute("aria-live", "polite")
    expect(log).to_contain_text("Refunds take 5 to 7 working days.")

    # The token lives in the site's localStorage, never in a URL (the stream is read by fetch).
    token = page.evaluate(
        "Object.entries(localStorage).filter(([k]) => k.startsWith('findesk-chat:'))"
        ".map(([, v]) => JSON.parse(v).session.token)[0]"
    )
    assert token and len(token) > 20
    assert not [u for u in seen.urls if token in u]
    events = [u for u in seen.urls if "/chat/v1/events" in u]
    assert events and all("?" not in u for u in events)

    # Coming back later: the same visitor, back in the conversation they had open.
    visitors = {v.id for v in wired.stub.state.tokens.values()}
    page.reload()
    seen.open()
    expect(seen.thread.locator(".message")).to_have_count(2)
    expect(seen.box).to_be_focused()
    assert {v.id for v in wired.stub.state.tokens.values()} == visitors  # not a new visitor
    seen.panel.get_by_role("button", name="All conversations").click()
    expect(seen.panel.get_by_role("heading", name="Your conversations")).to_be_focused()
    item = seen.panel.get_by_role("button", name=re.compile("How long do refunds take"))
    expect(item).to_contain_text("Refunds take 5 to 7 working days.")
    assert seen.console == []
    assert wired.site.csp_violations == []


def test_typing_goes_both_ways_and_is_throttled(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "Can I change my booking?")
    before = len(wired.stub.calls("POST", f"/{cid}/typing"))
    seen.box.press_sequentially("I booked the wrong date for my trip", delay=20)
    sent = wait_until(
        lambda: len(wired.stub.calls("POST", f"/{cid}/typing")) - before, "a typing call"
    )
    assert 1 <= sent <= 2  # about 0.7 s of keystrokes: one call, not one per key

    wired.stub.emit(
        cid, "typing", {"conversation_id": cid, "author": {"type": "agent", "name": "Maria"}}
    )
    typing = seen.panel.locator(".typing")
    expect(typing).to_have_text("Maria is typing…")
    expect(typing).to_have_attribute("aria-live", "polite")
    wired.stub.say(cid, "<p>I can change it for you.</p>", author="agent", name="Maria Lopez")
    reply = seen.thread.locator(".message.from-agent")
    expect(reply).to_contain_text("I can change it for you.")
    expect(reply.locator(".name")).to_have_text("Maria Lopez")
    expect(reply.locator(".avatar")).to_have_text("ML")
    expect(typing).to_have_text("")


def test_quick_replies_and_waiting_for_a_person(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "My suitcase never arrived")
    wired.stub.say(
        cid,
        "<p>Did that help?</p>",
        quick_replies=[
            {"id": "qr_yes", "label": "Yes"},
            {"id": "qr_no", "label": "No"},
            {"id": "qr_human", "label": "Talk to a person"},
        ],
    )
    choices = seen.panel.get_by_role("group", name="Suggested replies")
    expect(choices.get_by_role("button")).to_have_text(["Yes", "No", "Talk to a person"])
    choices.get_by_role("button", name="Talk to a person").click()
    wait_until(lambda: wired.stub.calls("POST", f"/{cid}/messages"), "the quick reply")
    assert wired.stub.calls("POST", f"/{cid}/messages")[-1] == {
        "body": "Talk to a person",
        "quick_reply_id": "qr_human",
    }
    expect(seen.thread.locator(".message.from-user").last).to_contain_text("Talk to a person")
    expect(choices).to_be_hidden()  # answered: no second pick

    wired.stub.set_state(cid, fin_state="complete", waiting_for_human=True)
    status = seen.panel.locator(".status")
    expect(status).to_have_text(re.compile("Waiting for a person"))
    expect(status).to_have_attribute("role", "status")
    seen.panel.get_by_role("button", name="All conversations").click()
    expect(
        seen.panel.get_by_role("button", name=re.compile("My suitcase never arrived"))
    ).to_contain_text("Waiting for a person")


def test_attachments_are_uploaded_then_sent(
    wired: Wired, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "Here is my receipt")
    (tmp_path / "receipt.png").write_bytes(png(200, 120))
    (tmp_path / "notes.txt").write_bytes(b"Booking ACME-2041\n")
    with seen.page.expect_file_chooser() as chooser:
        seen.panel.get_by_role("button", name="Attach a file").click()
    chooser.value.set_files([str(tmp_path / "receipt.png"), str(tmp_path / "notes.txt")])
    files = seen.panel.get_by_role("list", name="Files to send")
    expect(files.get_by_role("listitem")).to_have_count(2)
    expect(files).to_contain_text("receipt.png")
    # Uploaded at once (before sending), as the design says.
    assert [c["name"] for c in wired.stub.calls("POST", "/attachments")] == [
        "receipt.png",
        "notes.txt",
    ]
    files.get_by_role("button", name="Remove notes.txt").click()
    expect(files.get_by_role("listitem")).to_have_count(1)
    seen.box.fill("The receipt")
    seen.box.press("Enter")
    mine = seen.thread.locator(".message.from-user").last
    picture = mine.get_by_role("img", name="receipt.png")
    expect(picture).to_be_visible()
    picture.evaluate("img => img.decode()")  # loaded: the site's img-src lets findesk's files in
    assert picture.evaluate("img => img.naturalWidth") == 200
    sent = wired.stub.calls("POST", f"/{cid}/messages")[-1]
    assert sent["body"] == "The receipt" and len(sent["attachments"]) == 1
    expect(files).to_be_hidden()

    # A file from the team: a link with its name and size.
    wired.stub.say(
        cid,
        "<p>Your voucher</p>",
        author="agent",
        name="Maria",
        attachments=[
            {
                "name": "voucher.pdf",
                "url": f"{wired.stub.base_url}/files/x/voucher.pdf",
                "content_type": "application/pdf",
                "size": 20480,
            }
        ],
    )
    link = seen.thread.get_by_role("link", name=re.compile("voucher.pdf"))
    expect(link).to_contain_text("20 KB")
    expect(link).to_have_attribute("rel", "noopener noreferrer")


def test_the_rating_prompt_after_resolution(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "Thanks, all sorted")
    wired.stub.say(cid, "<p>Glad to help!</p>", author="agent", name="Maria")
    wired.stub.set_state(cid, status="resolved", waiting_for_human=False)
    wired.stub.emit(cid, "rating_request", {"conversation_id": cid})
    prompt = seen.panel.get_by_role("group", name="How would you rate the help you received?")
    expect(prompt).to_be_visible()
    expect(prompt.get_by_role("button")).to_have_text(
        [re.compile(label) for label in ("Terrible", "Bad", "OK", "Good", "Amazing")]
    )
    expect(seen.panel.locator(".status")).to_contain_text("resolved")
    assert_accessible(seen.page, "the rating prompt")

    send = seen.panel.get_by_role("button", name="Send rating")
    expect(send).to_be_hidden()  # nothing to send before a pick
    amazing = prompt.get_by_role("button", name="Amazing")
    amazing.click()
    expect(amazing).to_have_attribute("aria-pressed", "true")
    expect(send).to_be_enabled()
    seen.panel.get_by_label("Anything to add? (optional)").fill("Maria was quick.")
    send.click()
    expect(seen.panel.get_by_text("Thank you for your rating!")).to_be_visible()
    expect(prompt).to_be_hidden()
    assert wired.stub.calls("POST", f"/{cid}/rating") == [
        {"rating": "amazing", "remark": "Maria was quick."}
    ]

    # Rated once: coming back does not ask again.
    seen.page.reload()
    seen.open()
    expect(seen.thread.locator(".message")).to_have_count(2)
    expect(seen.panel.locator(".status")).to_contain_text("resolved")
    expect(prompt).to_be_hidden()


def test_the_thread_follows_its_end_unless_the_reader_scrolled_up(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "Where is my refund?")
    for n in range(12):
        wired.stub.say(cid, f"<p>Step {n}: a long enough answer to fill the thread.</p>")
    expect(seen.thread.locator(".message")).to_have_count(13)
    expect(seen.thread.locator(".message").last).to_be_in_viewport()
    # A rating prompt takes room from the thread: its newest message stays in sight.
    wired.stub.set_state(cid, status="resolved", waiting_for_human=False)
    wired.stub.emit(cid, "rating_request", {"conversation_id": cid})
    expect(
        seen.panel.get_by_role("group", name="How would you rate the help you received?")
    ).to_be_visible()
    expect(seen.thread.locator(".message").last).to_be_in_viewport()
    # The reader scrolls up to an older message: a new one does not pull them away from it.
    first = seen.thread.locator(".message").first
    first.scroll_into_view_if_needed()
    expect(first).to_be_in_viewport()
    wired.stub.say(cid, "<p>One more thing.</p>", author="agent", name="Maria")
    expect(seen.thread.locator(".message")).to_have_count(14)
    expect(first).to_be_in_viewport()
    expect(seen.thread.locator(".message").last).not_to_be_in_viewport()


def test_a_dropped_stream_reconnects_and_resumes_where_it_stopped(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "Is my flight on time?")
    connects = len(wired.stub.state.stream_connects)
    stream_open(wired, connects)
    first = wired.stub.say(cid, "<p>Let me check.</p>")
    expect(seen.thread).to_contain_text("Let me check.")
    seen_event = next(e.id for e in wired.stub.state.events if e.data.get("id") == first["id"])

    visitor = wired.stub.visitor_of(cid)
    # Sent down the stream (not only fetched): the widget knows the event's id.
    wait_until(lambda: wired.stub.state.delivered.get(visitor, 0) >= seen_event, "the event")
    refused = wired.stub.state.refused_connects
    wired.stub.drop_streams(refuse=True)
    expect(seen.panel.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
    wait_until(lambda: wired.stub.state.refused_connects > refused, "a refused reconnection")
    # Said while the visitor was cut off.
    wired.stub.say(cid, "<p>Your flight leaves on time.</p>")
    wired.stub.accept_streams()
    expect(seen.thread).to_contain_text("Your flight leaves on time.")
    expect(seen.panel.locator(".connection")).to_be_hidden()
    resumed = [r for v, r in wired.stub.state.stream_connects if v == visitor]
    # It said where it had got to (Last-Event-ID): at least the message it showed.
    assert resumed[-1] is not None and int(resumed[-1]) >= seen_event, resumed
    # Nothing twice: the replay and the catch-up fetch do not duplicate a message.
    expect(seen.thread.locator(f'[data-id="{first["id"]}"]')).to_have_count(1)
    expect(seen.thread.locator(".message.from-fin")).to_have_count(2)


# --- identity ------------------------------------------------------------------------------------


def test_a_signed_identity_is_sent_and_a_forged_one_is_refused(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    signed = f"?user_id=42&user_hash={user_hash('42')}&name=Ada%20Lovelace&email=ada%40example.com"
    seen = visit(wired, browser, contexts, query=signed)
    start_conversation(wired, seen, "Where is my invoice?")
    made = [c for c in wired.stub.calls("POST", "/session") if c.get("user_id") == "42"]
    assert made == [
        {
            "user_id": "42",
            "user_hash": user_hash("42"),
            "name": "Ada Lovelace",
            "email": "ada@example.com",
        }
    ]

    forged = visit(wired, browser, contexts, query=f"?user_id=43&user_hash={user_hash('42')}")
    conversations = len(wired.stub.conversation_ids())
    forged.open()
    forged.box.fill("Show me Ada's invoices")
    forged.box.press("Enter")
    expect(forged.panel.get_by_role("alert")).to_have_text(
        "The user's identity could not be verified."
    )
    expect(forged.box).to_have_value("Show me Ada's invoices")  # nothing lost
    assert len(wired.stub.conversation_ids()) == conversations


# --- hostile content -----------------------------------------------------------------------------

INSPECT = """() => {
  const root = document.querySelector("findesk-chat").shadowRoot;
  const all = [...document.querySelectorAll("*"), ...root.querySelectorAll("*")];
  const thread = root.querySelector("ol.messages");
  return {
    handlers: all.flatMap((e) => [...e.attributes]
      .filter((a) => a.name.toLowerCase().startsWith("on")).map((a) => `${e.tagName} ${a.name}`)),
    scriptUrls: all.flatMap((e) => ["href", "src", "action", "formaction", "data", "srcdoc"]
      .map((n) => e.getAttribute(n))
      .filter((v) => v !== null && (/^\\s*(javascript|vbscript|data):/i.test(v)
        || v.includes("<script")))),
    linkProtocols: [...thread.querySelectorAll("a[href]")].map((a) => a.protocol),
    dangerous: [...root.querySelectorAll(
      "script, iframe, object, embed, math, form:not(.composer):not(.rating), base, meta, style,"
      + " details, ol.messages svg, .conversations svg"
    )].map((e) => e.tagName),
    scripts: document.querySelectorAll("script").length,
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
  };
}"""


def test_the_xss_corpus_stays_inert_in_messages_and_names(
    browser: Browser, contexts: list[BrowserContext]
) -> None:
    hostile = Wired(title=TITLE, greeting=NAME)
    try:
        context = browser.new_context(viewport=DESKTOP)
        contexts.append(context)
        page = context.new_page()
        fired: list[str] = []
        dialogs: list[str] = []
        page.expose_function("findeskPwned", lambda where: fired.append(str(where)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{hostile.site.url}/")
        launcher = page.locator("findesk-chat button.launcher")
        launcher.click()
        panel = page.get_by_role("dialog")
        expect(panel.get_by_role("heading", level=2)).to_have_text(TITLE)  # as text
        expect(panel.locator(".greeting")).to_have_text(NAME)
        box = panel.get_by_role("textbox", name="Message")
        box.fill(TITLE + " " + HOSTILE[1])  # the visitor's own text is text
        box.press("Enter")
        cid = wait_until(lambda: hostile.stub.conversation_ids(), "a conversation")[0]
        stream_open(hostile)
        marker = "hostile-corpus"
        # As findesk sends it (sanitised) and, were the server ever to slip, as given.
        hostile.stub.say(cid, f"<p>{marker} sanitised</p>" + "".join(HOSTILE), name=NAME)
        hostile.stub.say(
            cid,
            f"<p>{marker} raw</p>" + "".join(HOSTILE),
            author="agent",
            name=NAME,
            raw=True,
            quick_replies=[{"id": "q1", "label": HOSTILE[1]}, {"id": "q2", "label": TITLE}],
            attachments=[
                {
                    "name": NAME,
                    "url": "javascript:findeskPwned('attachment')",
                    "content_type": "text/plain",
                    "size": 1,
                },
                {
                    "name": HOSTILE[0],
                    "url": f"{hostile.stub.base_url}/files/x/a.txt",
                    "content_type": "text/plain",
                    "size": 1,
                },
            ],
        )
        hostile.stub.emit(
            cid, "typing", {"conversation_id": cid, "author": {"type": "agent", "name": NAME}}
        )
        thread = panel.locator("ol.messages")
        expect(thread).to_contain_text(f"{marker} sanitised")
        expect(thread).to_contain_text(f"{marker} raw")
        expect(panel.locator(".typing")).to_have_text(f"{NAME} is typing…")
        expect(panel.get_by_role("button", name=HOSTILE[1])).to_be_visible()  # label as text
        expect(thread.locator(".message.from-agent .name")).to_have_text(NAME)
        for link in thread.locator("a", has_text="Claim").all():
            link.click(no_wait_after=True, modifiers=["Alt"])
        page.wait_for_function(
            "() => [...document.querySelector('findesk-chat').shadowRoot.querySelectorAll('img')]"
            ".every((i) => i.complete)"
        )
        page.evaluate("() => new Promise((resolve) => setTimeout(resolve))")  # queued handlers
        # The list shows the title and preview as text too.
        panel.get_by_role("button", name="All conversations").click()
        expect(panel.locator(".conversation .subject")).to_contain_text("Refund <script>")
        found = page.evaluate(INSPECT)
        assert fired == []
        assert dialogs == []
        assert found["pwned"] is None
        assert found["handlers"] == []
        assert found["scriptUrls"] == []
        assert set(found["linkProtocols"]) <= {"http:", "https:", "mailto:"}
        assert found["dangerous"] == []
        assert found["scripts"] == 1  # the snippet's own
    finally:
        hostile.stop()


# --- phone, keyboard, accessibility, reduced motion ----------------------------------------------


def test_at_phone_width_the_panel_is_full_screen_and_keyboard_use_works(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts, viewport=PHONE, reduced_motion="reduce")
    page = seen.page
    # Keyboard only: Tab reaches the launcher after the site's own button.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(seen.launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(seen.panel).to_be_visible()
    expect(seen.box).to_be_focused()
    box = seen.panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
    assert seen.panel.evaluate("p => getComputedStyle(p).animationName") == "none"
    connects = len(wired.stub.state.stream_connects)
    seen.box.press_sequentially("How long do refunds take?")
    page.keyboard.press("Enter")
    expect(seen.thread.locator(".message.from-user")).to_contain_text("How long do refunds take?")
    cid = wait_until(lambda: wired.stub.conversation_ids(), "a conversation")[-1]
    stream_open(wired, connects + 1)
    wired.stub.say(cid, CITATION)
    expect(seen.thread.locator(".message.from-fin")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save(page, "chat-widget-phone.png")
    # A visible focus ring on the control that has focus.
    outline = seen.box.evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline == "solid"
    # The panel covers the page: it is modal, and Tab goes round inside it, both ways.
    expect(seen.panel).to_have_attribute("aria-modal", "true")
    inside = "p => p.contains(p.getRootNode().activeElement)"
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        assert seen.panel.evaluate(inside), f"{key} left the panel"
    seen.box.focus()
    page.keyboard.press("Escape")
    expect(seen.panel).to_be_hidden()
    expect(seen.launcher).to_be_focused()
    expect(seen.launcher).to_have_attribute("aria-expanded", "false")
    # At desktop width the page stays usable beside the panel: not modal.
    page.set_viewport_size(DESKTOP)
    expect(page.locator("findesk-chat #fdc-panel")).to_have_attribute("aria-modal", "false")


def test_the_widget_passes_the_accessibility_check(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    # Without motion, so that axe never measures a panel halfway through fading in.
    seen = visit(wired, browser, contexts, reduced_motion="reduce")
    assert_accessible(seen.page, "the closed widget")
    cid = start_conversation(wired, seen, "Do you have trips to Lisbon?")
    wired.stub.say(cid, CITATION, quick_replies=[{"id": "y", "label": "Yes"}])
    wired.stub.say(cid, "<p>Maria here.</p>", author="agent", name="Maria")
    wired.stub.set_state(cid, waiting_for_human=True)
    expect(seen.thread.locator(".message")).to_have_count(3)
    assert_accessible(seen.page, "the thread")
    seen.panel.get_by_role("button", name="All conversations").click()
    expect(seen.panel.get_by_role("heading", name="Your conversations")).to_be_visible()
    assert_accessible(seen.page, "the open panel's list")
    seen.panel.get_by_role("button", name=re.compile("Lisbon")).click()


def test_a_reply_while_the_panel_is_closed_shows_on_the_launcher(
    wired: Wired, browser: Browser, contexts: list[BrowserContext]
) -> None:
    seen = visit(wired, browser, contexts)
    cid = start_conversation(wired, seen, "Can I pay in instalments?")
    seen.page.keyboard.press("Escape")
    expect(seen.panel).to_be_hidden()
    wired.stub.say(cid, "<p>Yes, in three.</p>", author="agent", name="Maria")
    expect(seen.launcher).to_have_accessible_name("Open chat, 1 unread")
    expect(seen.launcher.locator(".badge")).to_have_text("1")
    reads = len(wired.stub.calls("POST", f"/{cid}/read"))
    seen.launcher.click()
    expect(seen.thread).to_contain_text("Yes, in three.")
    expect(seen.launcher.locator(".badge")).to_be_hidden()
    wait_until(lambda: len(wired.stub.calls("POST", f"/{cid}/read")) > reads, "a read receipt")
