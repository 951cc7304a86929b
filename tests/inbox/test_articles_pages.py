"""The inbox's knowledge base pages over plain HTTP, on SQLite and on PostgreSQL: the list with
search and state filter, writing an article through the forms (save, publish, archive, delete,
preview), validation that keeps what the agent wrote, escaping, and Fin's copy as the inbox
shows it (published, pending, not publishable, a failed publish and its "Retry now").

Pages are read as HTML, as a browser without JavaScript would. Fin's publisher is off here: a
failed publish is made by writing the article's ``fin_*`` columns, as the publisher would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update
from support.server import LiveServer
from web_support import (
    Node,
    Person,
    Web,
    new_agent,
    parse_html,
    sign_in,
    start_server,
    unique,
    with_cookie,
)

from findesk.kit.timeutil import isoformat, utcnow
from findesk.knowledge import repository
from findesk.knowledge.models import Article

LIST = "/inbox/articles"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # No publisher: the tests play its part by writing the fin_* columns themselves.
    live = start_server(
        request, request.param, tmp_path_factory.mktemp("articles"), kb_publish_in_process=False
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def me(server: LiveServer) -> Person:
    return new_agent(server, "Kim Writer")


@pytest.fixture(scope="module")
def web(server: LiveServer, me: Person) -> Iterator[Web]:
    signed_in = sign_in(server, me)
    yield signed_in
    signed_in.close()


# --- helpers ---------------------------------------------------------------------------------


def article_form(**fields: str) -> dict[str, str]:
    return {
        "title": unique("How to reset a password"),
        "body": "Open **Settings**, then *Security*.",
        "body_format": "markdown",
        "locale": "en",
        "url": "",
        "action": "save",
        **fields,
    }


def create(web: Web, **fields: str) -> str:
    """Submit the new-article form; the id of the article it made."""
    response = web.post(LIST, article_form(**fields))
    assert response.status_code == 303, response.text[:500]
    location = urlsplit(response.headers["location"])
    assert location.path.startswith(f"{LIST}/art"), location
    return location.path.rsplit("/", 1)[1]


def stored(server: LiveServer, article_id: str) -> Article | None:
    with server.db.read_session() as session:
        return session.get(Article, article_id)


def saved(server: LiveServer, article_id: str) -> Article:
    article = stored(server, article_id)
    assert article is not None
    return article


def articles_snapshot(server: LiveServer) -> list[tuple[Any, ...]]:
    with server.db.read_session() as session:
        return sorted(
            (a.id, a.title, a.body_source, a.state, a.updated_at, a.deleted_at, a.fin_pending)
            for a in session.scalars(select(Article))
        )


def set_fin(server: LiveServer, article_id: str, **columns: Any) -> None:
    with server.db.transaction() as session:
        session.execute(update(Article).where(Article.id == article_id).values(**columns))


def listed(page: Node) -> dict[str, Node]:
    """The list page's rows by article id."""
    return {row.attrs["data-article-id"]: row for row in page.find_all("tr", "article-item")}


def fin_text(node: Node) -> str:
    return node.find("span", "fin-status").text


def counts(page: Node) -> dict[str, int]:
    return {s.attrs["data-count"]: int(s.text) for s in page.find_all("span", "count")}


def textarea(page: Node) -> str:
    """The body textarea's content exactly as sent (the page's HTML parser unescapes it)."""
    node = page.find("textarea", name="body")
    return "".join(c for c in node.children if isinstance(c, str))


def field_values(page: Node) -> dict[str, str]:
    form = page.find("form", id="article-form")
    values = {
        i.attrs["name"]: i.attrs.get("value", "")
        for i in form.find_all("input")
        if i.attrs.get("name") != "csrf_token"
    }
    values["body"] = textarea(page).removeprefix("\n")
    chosen = [
        o.attrs["value"] for o in form.find("select").find_all("option") if "selected" in o.attrs
    ]
    values["body_format"] = chosen[0]
    return values


def field_error(page: Node, name: str) -> str:
    return page.find("p", "field-error", id=f"{name}-error").text


def notice(response_location: str) -> str:
    return parse_qs(urlsplit(response_location).query)["notice"][0]


# --- signing in and CSRF ---------------------------------------------------------------------


def test_the_pages_need_a_signed_in_agent_and_change_nothing_for_strangers(
    server: LiveServer, web: Web
) -> None:
    article_id = create(web)
    before = articles_snapshot(server)
    with with_cookie(server, None) as http:
        for path in (LIST, f"{LIST}/new", f"{LIST}/{article_id}"):
            response = http.get(path)
            assert response.status_code == 303, path
            location = urlsplit(response.headers["location"])
            assert location.path == "/login"
            assert parse_qs(location.query)["next"] == [path]
        for path in (
            LIST,
            f"{LIST}/preview",
            f"{LIST}/{article_id}",
            f"{LIST}/{article_id}/retry",
            f"{LIST}/{article_id}/delete",
        ):
            response = http.post(path, data={**article_form(), "csrf_token": web.csrf})
            assert response.status_code == 401, path
    assert articles_snapshot(server) == before


def test_every_article_form_needs_its_csrf_token(server: LiveServer, web: Web, me: Person) -> None:
    article_id = create(web)
    set_fin(server, article_id, fin_error="boom", fin_attempts=2)
    other = sign_in(server, new_agent(server, "Oli Other"))
    paths = [
        LIST,
        f"{LIST}/preview",
        f"{LIST}/{article_id}",
        f"{LIST}/{article_id}/retry",
        f"{LIST}/{article_id}/delete",
    ]
    before = articles_snapshot(server)
    for path in paths:
        for token in (None, "", "csrf_made-up", other.csrf):
            form = article_form(action="publish")
            if token is not None:
                form["csrf_token"] = token
            response = web.http.post(path, data=form)
            assert response.status_code == 403, (path, token, response.status_code)
    assert articles_snapshot(server) == before
    assert saved(server, article_id).fin_attempts == 2
    other.close()


# --- writing articles ------------------------------------------------------------------------


def test_the_topbar_links_to_the_articles(web: Web) -> None:
    for path in ("/inbox", LIST):
        assert web.page(path).find("header", "topbar").find("a", href=LIST).text == "Articles"


def test_an_agent_writes_saves_publishes_archives_and_deletes_through_the_forms(
    server: LiveServer, web: Web, me: Person
) -> None:
    new = web.page(f"{LIST}/new")
    assert new.find("h1").text == "New article"
    assert field_values(new) == {
        "title": "",
        "locale": "en",
        "url": "",
        "body": "",
        "body_format": "markdown",
    }
    buttons = [b.text for b in new.find("form", id="article-form").find_all("button")]
    assert buttons == ["Save draft", "Publish", "Preview"]

    title = unique("Refunds")
    body = "# Refunds\n\nWe refund **within 14 days**.\n\n- one\n- two"
    response = web.post(LIST, article_form(title=title, body=body))
    assert response.status_code == 303
    article_id = urlsplit(response.headers["location"]).path.rsplit("/", 1)[1]
    assert notice(response.headers["location"]) == "created"
    article = saved(server, article_id)
    assert (article.title, article.state, article.author_id) == (title, "draft", me.id)
    assert article.body_source == body
    assert "<b>within 14 days</b>" in article.body_html

    page = web.page(f"{LIST}/{article_id}", notice="created")
    assert page.find("p", "notice").text == "Article created."
    assert field_values(page) == {
        "title": title,
        "locale": "en",
        "url": "",
        "body": body,
        "body_format": "markdown",
    }
    preview = page.find("div", id="article-preview")
    assert preview.find("b").text == "within 14 days"
    assert [li.text for li in preview.find_all("li")] == ["one", "two"]
    assert page.find("span", "badge", data_state="draft")
    assert fin_text(page) == "Not in Fin"
    assert "(once published)" in page.find("aside", "article-meta").text
    assert page.first("a", "public-url") is None

    drafts = web.page(LIST, state="draft")
    assert article_id in listed(drafts)
    assert listed(drafts)[article_id].find("a").attrs["href"] == f"{LIST}/{article_id}"

    # Edit and publish in one go: the form is saved, then published.
    edited = article_form(title=title + " (updated)", body=body + "\n- three", action="publish")
    response = web.post(f"{LIST}/{article_id}", edited)
    assert response.status_code == 303
    assert notice(response.headers["location"]) == "published"
    article = saved(server, article_id)
    assert (article.state, article.title) == ("published", title + " (updated)")
    assert article.body_source.endswith("- three")
    assert article.published_at is not None
    assert article.fin_pending, "an English published article is queued for Fin"

    page = web.page(f"{LIST}/{article_id}")
    link = page.find("a", "public-url")
    assert link.attrs["href"] == f"{server.base_url}/help/{article.slug}"
    assert fin_text(page) == "Pending"
    published = web.page(LIST, state="published")
    assert listed(published)[article_id].find("span", "badge").attrs["data-state"] == "published"
    assert fin_text(listed(published)[article_id]) == "Pending"
    assert article_id not in listed(web.page(LIST, state="draft"))

    # A custom URL replaces findesk's own page as the public URL.
    response = web.post(
        f"{LIST}/{article_id}",
        article_form(
            title=article.title, body=article.body_source, url="https://help.example.com/r"
        ),
    )
    assert response.status_code == 303 and notice(response.headers["location"]) == "saved"
    page = web.page(f"{LIST}/{article_id}")
    assert page.find("a", "public-url").attrs["href"] == "https://help.example.com/r"
    assert saved(server, article_id).state == "published", "saving keeps the state"

    response = web.post(f"{LIST}/{article_id}", article_form(title=title, action="archive"))
    assert response.status_code == 303 and notice(response.headers["location"]) == "archived"
    assert saved(server, article_id).state == "archived"
    archived = web.page(LIST, state="archived")
    assert listed(archived)[article_id].find("span", "badge").attrs["data-state"] == "archived"

    response = web.post(f"{LIST}/{article_id}", article_form(title=title, action="draft"))
    assert response.status_code == 303
    assert saved(server, article_id).state == "draft"

    # Delete: behind a disclosure that says what it does, then gone.
    page = web.page(f"{LIST}/{article_id}")
    zone = page.find("details", "danger-zone")
    assert "cannot be undone" in zone.text
    assert zone.find("form").attrs["action"] == f"{LIST}/{article_id}/delete"
    response = web.post(f"{LIST}/{article_id}/delete")
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == LIST
    assert web.page(LIST, notice="deleted").find("p", "notice").text == "Article deleted."
    assert stored(server, article_id) is None
    assert web.get(f"{LIST}/{article_id}").status_code == 404
    assert article_id not in listed(web.page(LIST))
    assert web.post(f"{LIST}/{article_id}", article_form()).status_code == 404
    assert web.post(f"{LIST}/{article_id}/retry").status_code == 404
    assert web.post(f"{LIST}/{article_id}/delete").status_code == 404


def test_the_list_searches_and_filters_by_state_with_counts(server: LiveServer, web: Web) -> None:
    word = unique("zebra")
    draft = create(web, title=f"Draft about {word}")
    live = create(web, title="Published one", body=f"Mentions {word} in the body", action="publish")
    other = create(web, title=unique("Unrelated"), action="publish")

    found = listed(web.page(LIST, q=word))
    assert set(found) == {draft, live}
    assert set(listed(web.page(LIST, q=word, state="published"))) == {live}
    assert set(listed(web.page(LIST, q=word, state="draft"))) == {draft}
    assert listed(web.page(LIST, q=word, state="archived")) == {}
    assert other in listed(web.page(LIST, state="published"))

    page = web.page(LIST, q=word, state="published")
    assert page.find("input", id="article-q").attrs["value"] == word
    assert page.find("a", aria_current="page").attrs["data-state"] == "published"
    with server.db.read_session() as session:
        in_db = repository.count_by_state(session)
    shown = counts(page)
    assert shown == {
        "all": sum(in_db.values()),
        "draft": in_db.get("draft", 0),
        "published": in_db.get("published", 0),
        "archived": in_db.get("archived", 0),
    }
    assert shown["published"] >= 2 and shown["draft"] >= 1
    # A filter link keeps the search.
    draft_link = page.find("a", data_state="draft").attrs["href"]
    assert parse_qs(urlsplit(draft_link).query) == {"state": ["draft"], "q": [word]}
    assert "No article matches" in web.page(LIST, q=unique("nothing")).find("p", "empty").text
    # Nonsense filters fall back to everything.
    assert (
        web.page(LIST, state="bogus", offset="-3")
        .find("a", aria_current="page")
        .attrs["data-state"]
        == "all"
    )


# --- validation keeps the input ----------------------------------------------------------------


def test_a_refused_new_article_is_shown_again_with_everything_the_agent_wrote(
    server: LiveServer, web: Web
) -> None:
    before = articles_snapshot(server)
    body = "A long text\nwith <b>markup</b> & **Markdown**\n\nthat must not be lost."
    form = article_form(title="   ", body=body, locale="fr-CA", url="https://x.example/a")
    response = web.post(LIST, form)
    assert response.status_code == 422
    page = parse_html(response.text)
    assert field_error(page, "title") == "title must not be blank."
    assert page.find("input", name="title").attrs["aria-invalid"] == "true"
    assert "Not saved" in page.find("p", "form-error").text
    assert field_values(page) == {
        "title": "   ",
        "locale": "fr-CA",
        "url": "https://x.example/a",
        "body": body,
        "body_format": "markdown",
    }
    assert page.find("div", id="article-preview").find("b").text == "markup"
    # Publishing an empty body is refused, and the new article is not half-made.
    response = web.post(LIST, article_form(title="Empty", body=" ", action="publish"))
    assert response.status_code == 422
    page = parse_html(response.text)
    assert field_error(page, "body") == "An article needs a body before it is published."
    assert field_values(page)["title"] == "Empty"
    assert articles_snapshot(server) == before


def test_a_refused_edit_keeps_the_input_and_leaves_the_article_as_it_was(
    server: LiveServer, web: Web
) -> None:
    article_id = create(web)
    before = articles_snapshot(server)
    edited = article_form(
        title="New title", body="Rewritten **body**", url="ftp://nope", locale="x"
    )
    response = web.post(f"{LIST}/{article_id}", edited)
    assert response.status_code == 422
    page = parse_html(response.text)
    errors = [p.attrs["id"] for p in page.find_all("p", "field-error")]
    assert len(errors) == 1 and errors[0] in ("url-error", "locale-error")
    assert field_values(page) == {
        "title": "New title",
        "locale": "x",
        "url": "ftp://nope",
        "body": "Rewritten **body**",
        "body_format": "markdown",
    }
    assert page.find("div", id="article-preview").find("b").text == "body"
    assert page.find("aside", "article-meta"), "the article's own panel is still there"
    assert articles_snapshot(server) == before

    response = web.post(f"{LIST}/{article_id}", article_form(body="", action="publish"))
    assert response.status_code == 422
    assert field_error(parse_html(response.text), "body").startswith("An article needs a body")
    assert saved(server, article_id).state == "draft"


# --- previews ------------------------------------------------------------------------------


def test_the_preview_endpoint_renders_sanitised_html(web: Web) -> None:
    body = "Hello **bold** <script>alert(1)</script><img src=x onerror=alert(2)>"
    response = web.http.post(
        f"{LIST}/preview",
        data={"body": body, "body_format": "markdown"},
        headers={"X-CSRF-Token": web.csrf},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    html = response.json()["html"]
    assert "<b>bold</b>" in html
    assert "<script" not in html and "onerror" not in html and "alert(1)" not in html
    raw = web.http.post(
        f"{LIST}/preview",
        data={"body": "<h3>Sub</h3><em>x</em>", "body_format": "html"},
        headers={"X-CSRF-Token": web.csrf},
    )
    assert raw.json()["html"] == "<h2>Sub</h2><i>x</i>"


def test_the_preview_button_shows_the_preview_without_saving(server: LiveServer, web: Web) -> None:
    article_id = create(web, body="Old text")
    before = articles_snapshot(server)
    response = web.post(
        f"{LIST}/{article_id}", article_form(title="Unsaved", body="New **text**", action="preview")
    )
    assert response.status_code == 200
    page = parse_html(response.text)
    assert page.find("div", id="article-preview").find("b").text == "text"
    assert field_values(page)["body"] == "New **text**"
    assert field_values(page)["title"] == "Unsaved"
    assert "not saved" in page.find("p", "notice").text
    new = web.post(LIST, article_form(body="*fresh*", action="preview"))
    assert new.status_code == 200
    assert parse_html(new.text).find("div", id="article-preview").find("i").text == "fresh"
    assert articles_snapshot(server) == before


# --- escaping --------------------------------------------------------------------------------


def test_titles_are_escaped_and_bodies_sanitised_everywhere(server: LiveServer, web: Web) -> None:
    evil_title = '<script>alert("t")</script><img src=x onerror=alert(1)>'
    evil_body = (
        'Hi <script>alert("b")</script><img src="x" onerror="alert(2)">'
        '<a href="javascript:alert(3)">link</a><iframe src="https://evil.example"></iframe>'
        '\n\n</textarea><script>alert("escape")</script>'
    )
    article_id = create(web, title=evil_title, body=evil_body, action="publish")
    set_fin(server, article_id, fin_error='<script>alert("e")</script>', fin_attempts=1)
    for path in (LIST, f"{LIST}/{article_id}"):
        text = web.get(path).text
        assert "<script>alert" not in text, path
        assert "<img src=x" not in text and "<iframe" not in text, path
        assert 'href="javascript' not in text, path
        assert "&lt;script&gt;alert(" in text, path
    page = web.page(f"{LIST}/{article_id}")
    preview = page.find("div", id="article-preview")
    assert preview.find_all("script") == [] and preview.find_all("iframe") == []
    assert all("onerror" not in img.attrs for img in preview.find_all("img"))
    assert all(not a.attrs.get("href", "").startswith("javascript") for a in preview.find_all("a"))
    # The source is kept as written, inside the textarea only.
    assert textarea(page).removeprefix("\n") == evil_body
    assert page.find("h1").text == evil_title
    assert "script-src 'self'" in web.get(f"{LIST}/{article_id}").headers["content-security-policy"]


# --- Fin's copy ------------------------------------------------------------------------------


def test_a_failed_publish_shows_its_error_and_retry_now_queues_it_again(
    server: LiveServer, web: Web
) -> None:
    article_id = create(web, action="publish")
    failed_at = utcnow() - timedelta(minutes=2)
    next_try = utcnow() + timedelta(minutes=10)
    set_fin(
        server,
        article_id,
        fin_pending=True,
        fin_error="Intercom answered 503 Service Unavailable",
        fin_error_at=failed_at,
        fin_attempts=3,
        fin_next_attempt_at=next_try,
    )
    row = listed(web.page(LIST, state="published"))[article_id]
    status = row.find("span", "fin-status")
    assert status.attrs["data-fin"] == "error"
    assert status.text.startswith("Error: Intercom answered 503 Service Unavailable")
    assert "(attempt 3, next try at" in status.text
    assert status.find("time").attrs["datetime"] == isoformat(next_try)

    page = web.page(f"{LIST}/{article_id}")
    meta = page.find("aside", "article-meta")
    error = meta.find("dd", "fin-error")
    assert error.text.startswith("Intercom answered 503 Service Unavailable at ")
    assert error.find("time").attrs["datetime"] == isoformat(failed_at)
    retry = meta.find("form", action=f"{LIST}/{article_id}/retry")
    assert retry.find("button").text == "Retry now"

    response = web.post(f"{LIST}/{article_id}/retry")
    assert response.status_code == 303
    assert notice(response.headers["location"]) == "retry"
    article = saved(server, article_id)
    assert article.fin_pending is True
    assert article.fin_attempts == 0
    assert article.fin_next_attempt_at is None
    page = web.page(f"{LIST}/{article_id}", notice="retry")
    assert page.find("p", "notice").text == "Publishing to Fin will be retried now."
    assert "retry queued" in fin_text(page)

    # The publisher then succeeds: the page id and the time are shown, the error and button go.
    published_at = utcnow()
    set_fin(
        server,
        article_id,
        fin_pending=False,
        fin_error=None,
        fin_error_at=None,
        fin_page_id="4711",
        fin_published_at=published_at,
    )
    page = web.page(f"{LIST}/{article_id}")
    status = page.find("span", "fin-status")
    assert status.attrs["data-fin"] == "published"
    assert status.text.startswith("Published to Fin at ")
    assert status.find("time").attrs["datetime"] == isoformat(published_at)
    meta = page.find("aside", "article-meta")
    assert meta.find("code").text == "4711"
    assert meta.find("dd", "fin-error").text == "none"
    assert meta.first("form", action=f"{LIST}/{article_id}/retry") is None
    assert "its page in Fin's Content Library" in meta.find("details", "danger-zone").text
    assert fin_text(listed(web.page(LIST))[article_id]).startswith("Published to Fin at")


def test_a_published_article_in_another_language_is_not_publishable(
    server: LiveServer, web: Web
) -> None:
    article_id = create(web, locale="fr", body="Bonjour **le monde**", action="publish")
    article = saved(server, article_id)
    assert (article.state, article.fin_pending) == ("published", False)
    row = listed(web.page(LIST, state="published"))[article_id]
    assert fin_text(row) == "Not publishable (non-English)"
    assert row.find("span", "badge").text == "fr"
    assert fin_text(web.page(f"{LIST}/{article_id}")) == "Not publishable (non-English)"
    # Back in English: queued for Fin.
    response = web.post(
        f"{LIST}/{article_id}", article_form(title=article.title, body="Hello", locale="en-GB")
    )
    assert response.status_code == 303
    assert fin_text(web.page(f"{LIST}/{article_id}")) == "Pending"


def test_unknown_articles_are_not_found(web: Web) -> None:
    response = web.get(f"{LIST}/art_doesnotexist")
    assert response.status_code == 404
    assert "No article" in parse_html(response.text).find("p", role="alert").text


def test_the_new_article_page_is_reachable_from_the_list(web: Web) -> None:
    page = web.page(LIST)
    assert page.find("a", href=f"{LIST}/new").text == "New article"
