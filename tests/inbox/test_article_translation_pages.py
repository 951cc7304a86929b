"""The inbox's translation pages over plain HTTP, on SQLite and PostgreSQL: the locale picker on
an article's page, writing, publishing, archiving and deleting a translation through its form
(CSRF-checked), validation that keeps what was written, and Intercom's copy as shown (pending,
in Intercom, an error with "Retry now"). The publisher is off: the tests write the
``intercom_*`` columns as it would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update
from support.server import LiveServer
from web_support import (
    Person,
    Web,
    new_agent,
    parse_html,
    sign_in,
    start_server,
    unique,
    with_cookie,
)

from findesk.knowledge.intercom_articles import _content, fingerprint
from findesk.knowledge.models import Article, ArticleTranslation

LIST = "/inbox/articles"
AUTHOR = 4242


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        request,
        request.param,
        tmp_path_factory.mktemp("translations"),
        kb_publish_in_process=False,
        intercom_article_author_id=AUTHOR,
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def me(server: LiveServer) -> Person:
    return new_agent(server, "Tess Translator")


@pytest.fixture(scope="module")
def web(server: LiveServer, me: Person) -> Iterator[Web]:
    signed_in = sign_in(server, me)
    yield signed_in
    signed_in.close()


def create_article(web: Web) -> str:
    form = {
        "title": unique("Reset a password"),
        "body": "Open **Settings**.",
        "body_format": "markdown",
        "locale": "en",
        "url": "",
        "action": "publish",
    }
    response = web.post(LIST, form)
    assert response.status_code == 303, response.text[:500]
    return urlsplit(response.headers["location"]).path.rsplit("/", 1)[1]


def translation_form(**fields: str) -> dict[str, str]:
    return {
        "title": "Passwort zurücksetzen",
        "description": "Kurz erklärt.",
        "body": "Öffnen Sie **Einstellungen**.",
        "body_format": "markdown",
        "action": "save",
        **fields,
    }


def stored(server: LiveServer, article_id: str, locale: str) -> ArticleTranslation | None:
    with server.db.read_session() as session:
        return session.get(ArticleTranslation, (article_id, locale))


def article_row(server: LiveServer, article_id: str) -> Article:
    with server.db.read_session() as session:
        article = session.get(Article, article_id)
    assert article is not None
    return article


def set_article(server: LiveServer, article_id: str, **columns: Any) -> None:
    with server.db.transaction() as session:
        session.execute(update(Article).where(Article.id == article_id).values(**columns))


def test_a_translation_is_picked_written_published_shown_and_deleted(
    server: LiveServer, web: Web
) -> None:
    article_id = create_article(web)
    page = parse_html(web.get(f"{LIST}/{article_id}").text)
    picker = page.find("form", "locale-picker")
    offered = [o.attrs["value"] for o in picker.find_all("option")]
    assert "de" in offered and "pt-BR" in offered and "en" not in offered  # not its own

    picked = web.http.get(f"{LIST}/{article_id}/translation", params={"locale": "de"})
    assert picked.status_code == 303
    assert urlsplit(picked.headers["location"]).path == f"{LIST}/{article_id}/translations/de"
    editor = web.get(f"{LIST}/{article_id}/translations/de")
    assert editor.status_code == 200 and "new translation" in editor.text

    created = web.post(f"{LIST}/{article_id}/translations/de", translation_form(action="publish"))
    assert created.status_code == 303, created.text[:500]
    assert parse_qs(urlsplit(created.headers["location"]).query)["notice"] == ["published"]
    german = stored(server, article_id, "de")
    assert german is not None and german.state == "published"
    assert german.body_html == "<p>Öffnen Sie <b>Einstellungen</b>.</p>"
    assert german.description == "Kurz erklärt."
    assert article_row(server, article_id).intercom_pending  # Intercom's copy is due

    # The article's page lists it with its state and Intercom's: pending for now.
    page = parse_html(web.get(f"{LIST}/{article_id}").text)
    [row] = page.find_all("tr", "translation-item")
    assert row.attrs["data-locale"] == "de"
    assert row.find("span", "badge").attrs["data-state"] == "published"
    assert row.find("span", "intercom-status").attrs["data-intercom"] == "pending"
    assert "de" not in [
        o.attrs["value"] for o in page.find("form", "locale-picker").find_all("option")
    ]

    # Once Intercom has it as it is, the page says so.
    sent = _content(german.title, german.description, german.body_html, german.state, AUTHOR)
    with server.db.transaction() as session:
        session.execute(
            update(ArticleTranslation)
            .where(ArticleTranslation.article_id == article_id)
            .values(intercom_hash=fingerprint(sent))
        )
    set_article(server, article_id, intercom_pending=False, intercom_article_id="7001")
    page = parse_html(web.get(f"{LIST}/{article_id}/translations/de").text)
    assert page.find("span", "intercom-status").attrs["data-intercom"] == "published"
    assert "7001" in page.find("aside", "article-meta").text

    # A failed publish shows its error and a "Retry now" that queues it again.
    set_article(
        server, article_id, intercom_error="HTTP 400 parameter_invalid: nope", intercom_attempts=3
    )
    page = parse_html(web.get(f"{LIST}/{article_id}/translations/de").text)
    assert page.find("span", "intercom-status").attrs["data-intercom"] == "error"
    assert "parameter_invalid" in page.find("dd", "intercom-error").text
    retried = web.post(f"{LIST}/{article_id}/intercom-retry", {})
    assert retried.status_code == 303
    again = article_row(server, article_id)
    assert again.intercom_pending and again.intercom_attempts == 0

    # Archived, then deleted.
    archived = web.post(f"{LIST}/{article_id}/translations/de", translation_form(action="archive"))
    assert archived.status_code == 303
    translation = stored(server, article_id, "de")
    assert translation is not None and translation.state == "archived"
    deleted = web.post(f"{LIST}/{article_id}/translations/de/delete", {})
    assert deleted.status_code == 303
    assert stored(server, article_id, "de") is None
    assert parse_html(web.get(f"{LIST}/{article_id}").text).find_all("tr", "translation-item") == []


def test_a_refused_translation_keeps_what_was_written(server: LiveServer, web: Web) -> None:
    article_id = create_article(web)
    response = web.post(
        f"{LIST}/{article_id}/translations/fr",
        translation_form(title="   ", body="Bonjour **monde**", action="publish"),
    )
    assert response.status_code == 422
    page = parse_html(response.text)
    assert page.find("p", "field-error", id="title-error").text
    assert "Bonjour **monde**" in response.text
    assert stored(server, article_id, "fr") is None
    empty = web.post(
        f"{LIST}/{article_id}/translations/fr", translation_form(body="", action="publish")
    )
    assert empty.status_code == 422 and stored(server, article_id, "fr") is None

    # Languages Intercom has not, and the article's own, have no editor.
    for locale in ("xx", "de-DE", "en"):
        assert web.get(f"{LIST}/{article_id}/translations/{locale}").status_code == 404, locale
        posted = web.post(f"{LIST}/{article_id}/translations/{locale}", translation_form())
        assert posted.status_code == 404, locale
    assert (
        web.http.get(f"{LIST}/{article_id}/translation", params={"locale": "klingon"}).status_code
        == 404
    )


def test_translation_forms_need_a_signed_in_agent_and_their_csrf_token(
    server: LiveServer, web: Web
) -> None:
    article_id = create_article(web)
    assert web.post(f"{LIST}/{article_id}/translations/it", translation_form()).status_code == 303
    paths = [
        f"{LIST}/{article_id}/translations/nl",
        f"{LIST}/{article_id}/translations/it",
        f"{LIST}/{article_id}/translations/it/delete",
        f"{LIST}/{article_id}/intercom-retry",
    ]
    other = sign_in(server, new_agent(server, "Oli Other"))
    for path in paths:
        for token in (None, "", "csrf_made-up", other.csrf):
            form = translation_form(action="publish", title="Changed")
            if token is not None:
                form["csrf_token"] = token
            assert web.http.post(path, data=form).status_code == 403, (path, token)
    with with_cookie(server, None) as http:
        assert (
            urlsplit(http.get(f"{LIST}/{article_id}/translations/it").headers["location"]).path
            == "/login"
        )
        for path in paths:
            assert http.post(path, data=translation_form()).status_code == 401, path
    assert stored(server, article_id, "nl") is None
    italian = stored(server, article_id, "it")
    assert italian is not None and italian.state == "draft" and italian.title != "Changed"
