"""Every page of the inbox, the admin pages, the knowledge base and the public help center
passes axe-core's check in a real Chromium with no serious or critical violation, in the light
and the dark colour scheme, on a server holding ``make run``'s demo data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session
from support.a11y import assert_accessible
from support.server import LiveServer
from web_support import link_orders, start_server

from findesk import demo
from findesk.agents.models import Agent
from findesk.conversations.models import Conversation
from findesk.kit.actor import SYSTEM
from findesk.knowledge import collections
from findesk.knowledge.models import Article, ArticleCollection
from findesk.knowledge.service import TranslationDraft, create_translation
from findesk.tickets import service as tickets
from findesk.tickets.schemas import TicketTypeCreate

SCHEMES = ("light", "dark")


@pytest.fixture(scope="module")
def demo_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, demo.DemoCredentials]]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("a11y"))
    with live.db.transaction() as session:
        credentials = demo.seed(session, live.settings.fin_agent_email)
        link_orders(session)
        _one_ticket(session)
        _a_translation_and_a_collection(session)
    yield live, credentials
    live.stop()


def _a_translation_and_a_collection(session: Session) -> None:
    """The first published article in German too, and in a collection named in German."""
    article = session.scalars(
        select(Article).where(Article.state == "published").order_by(Article.id)
    ).first()
    assert article is not None
    draft = TranslationDraft(title="Hilfe", description="Kurz.", body="Text.", state="published")
    create_translation(session, article.id, "de", draft)
    collection = collections.create_collection(session, "Getting started", "First steps")
    collections.name_in(session, collection.id, "de", "Erste Schritte")
    collections.put_article(session, article.id, collection.id)


def _one_ticket(session: Session) -> None:
    """A customer ticket type (the side panel offers to convert) and one conversation converted
    (its panel shows the ticket card)."""
    admin = session.scalars(select(Agent).where(Agent.role == "admin")).first()
    assert admin is not None
    refund = tickets.create_type(session, admin, TicketTypeCreate(name="Refund"))
    first = session.scalars(select(Conversation.id).order_by(Conversation.id)).first()
    assert first is not None
    tickets.convert(
        session, first, SYSTEM, ticket_type_id=refund.id, attributes={"_default_title_": "Refund"}
    )


@pytest.fixture(params=SCHEMES)
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    scheme = request.param
    opened = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    yield opened
    opened.close()


def signed_in(context: BrowserContext, base_url: str, credentials: demo.DemoCredentials) -> Page:
    page = context.new_page()
    page.goto(f"{base_url}/login")
    assert_accessible(page, "the sign-in page")
    page.get_by_label("Email").fill(credentials.agent_email)
    page.get_by_label("Password").fill(credentials.agent_password or "")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_have_attribute("data-live", "open")
    return page


def test_every_agent_page_passes_the_accessibility_check(
    context: BrowserContext, demo_server: tuple[LiveServer, demo.DemoCredentials]
) -> None:
    live, credentials = demo_server
    with live.db.read_session() as session:
        conversation_ids = list(session.scalars(select(Conversation.id).order_by(Conversation.id)))
        article_id = session.scalars(select(Article.id)).first()
        translated_id = session.scalars(
            select(Article.id).where(Article.state == "published").order_by(Article.id)
        ).first()
        collection_id = session.scalars(select(ArticleCollection.id)).first()
        agent_id = credentials.fin_agent_id
    page = signed_in(context, live.base_url, credentials)
    pages = {
        **{f"the {q} queue": f"/inbox?queue={q}" for q in ("waiting", "mine", "fin", "all")},
        **{f"conversation {c}": f"/inbox/conversations/{c}" for c in conversation_ids},
        "the admin page": "/inbox/admin",
        "an agent's admin page": f"/inbox/admin/agents/{agent_id}",
        "the audit log": "/inbox/admin/audit",
        "the articles": "/inbox/articles",
        "a new article": "/inbox/articles/new",
        "an article": f"/inbox/articles/{article_id}",
        "an article's translation": f"/inbox/articles/{translated_id}/translations/de",
        "a new translation": f"/inbox/articles/{translated_id}/translations/ar",
        "the collections": "/inbox/article-collections",
        "a collection": f"/inbox/article-collections/{collection_id}",
        "the saved replies": "/inbox/saved-replies",
        "the macros": "/inbox/macros",
        "the object types": "/inbox/admin/objects",
        "the lookups": "/inbox/admin/lookups",
        "a new lookup": "/inbox/admin/lookups/new",
        "a conversation's objects": f"/inbox/conversations/{conversation_ids[0]}/objects",
        "the tickets": "/inbox/tickets",
        "a page that is not there": "/inbox/conversations/nope",
    }
    for what, path in pages.items():
        page.goto(f"{live.base_url}{path}")
        assert_accessible(page, what)


def test_the_help_center_passes_the_accessibility_check(
    context: BrowserContext, demo_server: tuple[LiveServer, demo.DemoCredentials]
) -> None:
    live, _ = demo_server
    page = context.new_page()
    page.goto(f"{live.base_url}/help")
    assert_accessible(page, "the help center")
    page.locator("main a[href^='/help/']").first.click()
    expect(page.locator("h1")).to_be_visible()
    assert_accessible(page, "a help article")
    page.goto(f"{live.base_url}/help/de")
    assert_accessible(page, "the German help center")
    page.locator("main a[href^='/help/de/']").first.click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    assert_accessible(page, "a German help article, with its language switcher")
