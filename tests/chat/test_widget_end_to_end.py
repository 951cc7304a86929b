"""The whole chat in Chromium, for each channel and each backend: a visitor on a company's site
(another origin, strict CSP) asks in the widget; the emulated Fin (Fin Agent API or Custom
Channel Events) answers with a citation; the visitor asks for a person; the conversation waits in
findesk's inbox; an agent opens it, types and replies there; the reply shows in the widget; the
agent resolves it and the visitor rates it in the widget; the rating is in findesk's CSAT.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from chat.chat_support import fast_outbox
from chat.widget_stub import CALM_CSS, Port, Served, SitePage
from inbox.web_support import PASSWORD, new_agent, start_server
from playwright.sync_api import Browser, BrowserContext, expect
from support.a11y import assert_accessible
from support.screenshots import save
from support.server import LiveServer

from findesk.conversations.models import Conversation
from findesk.csat.models import CsatRating
from findesk.emulator.content_api import store_of
from findesk.emulator.server import EmulatorConfig, create_emulator

FIN_AGENT_TOKEN = "e2e-fin-agent-api-key"
WEBHOOK_SECRET = "e2e-fin-agent-webhook-secret"
CHANNEL_TOKEN = "e2e-custom-channel-api-key"
CALLBACK_TOKEN = "e2e-custom-channel-callback-token"
ADMIN_TOKEN = "e2e-emulator-admin-token"
REFUNDS_URL = "https://help.example.com/refunds"


@dataclass
class Stack:
    findesk: LiveServer
    emulator: Served
    site: SitePage

    def stop(self) -> None:
        self.site.stop()
        self.emulator.stop()
        self.findesk.stop()


def start_stack(request: pytest.FixtureRequest, backend: str, channel: str, tmp: Path) -> Stack:
    site_port, emulator_port = Port(), Port()  # held: findesk cannot pick them meanwhile
    emulator_url = f"http://127.0.0.1:{emulator_port.number}"
    findesk = start_server(
        request,
        backend,
        tmp,
        chat_channel=channel,
        chat_allowed_origins=f"http://localhost:{site_port.number}",
        intercom_api_url=emulator_url,
        fin_agent_api_token=FIN_AGENT_TOKEN,
        fin_agent_api_webhook_secret=WEBHOOK_SECRET,
        custom_channel_token=CHANNEL_TOKEN,
        custom_channel_callback_token=CALLBACK_TOKEN,
        **fast_outbox(),
    )
    hooks = f"{findesk.base_url}/chat/hooks"
    config = EmulatorConfig(
        public_url=emulator_url,
        state_dir=tmp / "emulator",
        helpdesk_base_url=f"{findesk.base_url}/api/fin",
        token_url=f"{findesk.base_url}/oauth/token",
        client_id="unused",
        client_secret="unused",
        fin_agent_id=findesk.fin_agent_id,
        integration_id="e2e",
        webhook_key="unused",
        content_token=ADMIN_TOKEN,
        fin_agent_token=FIN_AGENT_TOKEN,
        fin_agent_webhook_url=f"{hooks}/fin-agent-api",
        fin_agent_webhook_secret=WEBHOOK_SECRET,
        custom_channel_token=CHANNEL_TOKEN,
        custom_channel_callback_url=f"{hooks}/custom-channel",
        custom_channel_callback_token=CALLBACK_TOKEN,
        chat_retry_delay=0.05,
        chat_retry_max_delay=0.5,
    )
    app = create_emulator(config)
    emulator = Served(app, emulator_port, lifespan="on")
    store = store_of(app)
    source = store.create_source("https://help.example.com", "api", "active")
    store.upsert_page(
        source_id=source.id,
        external_id="refunds",
        title="Refunds",
        html="<p>Refunds are paid back to the original card within 5 business days.</p>",
        url=REFUNDS_URL,
        locale="en",
        ai_agent_availability=True,
        ai_copilot_availability=True,
    )
    return Stack(findesk, emulator, SitePage(site_port, findesk.base_url, CALM_CSS))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


@pytest.mark.parametrize("channel", ["fin_agent_api", "custom_channel"])
def test_a_visitor_is_answered_by_fin_then_by_the_team_and_rates_it(
    request: pytest.FixtureRequest,
    backend: str,
    channel: str,
    tmp_path: Path,
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    stack = start_stack(request, backend, channel, tmp_path)
    try:
        run_the_flow(stack, channel, browser, contexts)
    finally:
        stack.stop()


def run_the_flow(
    stack: Stack, channel: str, browser: Browser, contexts: list[BrowserContext]
) -> None:
    visitor = browser.new_context(viewport={"width": 1280, "height": 800})
    contexts.append(visitor)
    site = visitor.new_page()
    console: list[str] = []
    site.on("console", lambda m: m.type == "error" and console.append(m.text))
    site.goto(f"{stack.site.url}/")

    # The visitor asks in the widget, on the company's site.
    launcher = site.locator("findesk-chat button.launcher")
    launcher.click()
    panel = site.get_by_role("dialog", name="Chat with us")
    expect(panel).to_be_visible()
    box = panel.get_by_role("textbox", name="Message")
    box.fill("How long do refunds take?")
    box.press("Enter")
    thread = panel.locator("ol.messages")
    expect(thread.locator(".message.from-user")).to_contain_text("How long do refunds take?")

    # Fin answers through the emulated Intercom, citing the content library.
    fin = thread.locator(".message.from-fin").first
    expect(fin).to_contain_text("5 business days", timeout=20_000)
    expect(fin.locator(f'a[href="{REFUNDS_URL}"]')).to_have_count(1)
    expect(fin.locator(".ai")).to_have_text("AI agent")
    with stack.findesk.db.read_session() as session:
        conversation = session.query(Conversation).filter_by(channel="chat").one()
        cid, title = conversation.id, conversation.title

    # The visitor asks for a person (with Custom Channel Events, through Fin's quick reply);
    # the widget says they are waiting for one.
    if channel == "custom_channel":
        choices = panel.get_by_role("group", name="Suggested replies")
        expect(choices.get_by_role("button", name="Talk to a person")).to_be_visible()
        choices.get_by_role("button", name="Talk to a person").click()
        expect(choices).to_be_hidden()
    else:
        box.fill("I want to talk to a person")
        box.press("Enter")
    expect(panel.locator(".status")).to_contain_text("Waiting for a person", timeout=20_000)

    # The conversation waits in the inbox; an agent opens it, types and replies.
    agent = new_agent(stack.findesk, "Maria Lopez")
    team = browser.new_context(viewport={"width": 1280, "height": 860})
    contexts.append(team)
    inbox = team.new_page()
    inbox.goto(f"{stack.findesk.base_url}/login")
    inbox.get_by_label("Email").fill(agent.email)
    inbox.get_by_label("Password").fill(PASSWORD)
    inbox.get_by_label("Password").press("Enter")
    expect(inbox).to_have_url(re.compile(r"/inbox(\?|$)"))
    inbox.goto(f"{stack.findesk.base_url}/inbox?queue=waiting")
    inbox.locator(f'a[href^="/inbox/conversations/{cid}?"]').first.click()
    expect(inbox.get_by_role("heading", name=title)).to_be_visible()
    inbox.get_by_role("textbox", name="Message").click()
    inbox.keyboard.type("Hello, I can help with your refund.")
    expect(panel.locator(".typing")).to_have_text("A teammate is typing…")
    with inbox.expect_navigation():  # the reply is a form post: the page loads again
        inbox.get_by_role("button", name="Send").click()
    expect(inbox.locator("body")).to_have_attribute("data-live", "open")  # live from here on

    reply = thread.locator(".message.from-agent")
    expect(reply).to_contain_text("Hello, I can help with your refund.")
    expect(reply.locator(".name")).to_have_text("Maria Lopez")
    expect(panel.locator(".typing")).to_have_text("")
    expect(panel.locator(".status")).to_be_hidden()  # a person has it now

    # The visitor types back: the agent sees it in the inbox, until the message arrives; typing
    # right after a message shows again at once.
    for words in ("Thanks, that helps", "Have a nice day!"):
        box.press_sequentially(words)
        expect(inbox.locator("#customer-typing")).to_have_text("Visitor is typing…")
        box.press("Enter")
        expect(inbox.locator(".thread .message.from-user").last).to_contain_text(words)
        expect(inbox.locator("#customer-typing")).to_have_text("")

    # The agent resolves it; the widget asks the visitor for a rating.
    inbox.get_by_role("button", name="Resolve").click()
    prompt = panel.get_by_role("group", name="How would you rate the help you received?")
    expect(prompt).to_be_visible()
    # The prompt took room from the thread, which still shows its newest message.
    expect(thread.locator(".message").last).to_be_in_viewport()
    # Nothing so far broke the site's CSP or logged an error (axe, injected next, does).
    assert stack.site.csp_violations == []
    assert console == []
    assert_accessible(site, f"the widget's rating prompt ({channel})")
    console.clear()
    prompt.get_by_role("button", name="Amazing").click()
    panel.get_by_label("Anything to add? (optional)").fill("Quick and kind.")
    if channel == "fin_agent_api":
        save(site, "chat-widget-end-to-end.png")
    panel.get_by_role("button", name="Send rating").click()
    expect(panel.get_by_text("Thank you for your rating!")).to_be_visible()
    with stack.findesk.db.read_session() as session:
        rating = session.get(CsatRating, cid)
        assert rating is not None
        assert (rating.score, rating.comment) == (5, "Quick and kind.")
    assert console == []


def test_the_demo_page_embeds_the_widget_with_a_signed_visitor(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    browser: Browser,
    contexts: list[BrowserContext],
) -> None:
    findesk = start_server(
        request, backend, tmp_path, chat_identity_secret="demo-identity-secret", **fast_outbox()
    )
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: m.type == "error" and console.append(m.text))
        page.on("response", lambda r: r.status >= 400 and console.append(f"{r.status} {r.url}"))
        page.goto(f"{findesk.base_url}/chat/demo")
        expect(page.get_by_text("You are chatting as Ada Lovelace")).to_be_visible()
        page.locator("findesk-chat button.launcher").click()
        panel = page.get_by_role("dialog", name="Chat with us")
        box = panel.get_by_role("textbox", name="Message")
        box.fill("Is the demo working?")
        box.press("Enter")
        expect(panel.locator(".message.from-user")).to_contain_text("Is the demo working?")
        # The page's strict CSP let the widget do all of it (axe, next, breaks it on purpose).
        assert console == []
        assert_accessible(page, "the chat demo page with the panel open")
        with findesk.db.read_session() as session:
            conversation = session.query(Conversation).filter_by(channel="chat").one()
            # The demo signs its visitor as a site's backend would: a known user, not a lead.
            assert conversation.user.object_id == "chat-user:demo-42"
            assert conversation.user.name == "Ada Lovelace"
    finally:
        findesk.stop()
