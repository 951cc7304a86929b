"""The public help centre (``/help``) against a live server, on SQLite and on PostgreSQL.

Articles are written through the agent API, as agents write them; the help centre is read as
an anonymous visitor, with no credentials at all."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.server import LiveServer


def uid(prefix: str = "w") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def visitor(server: LiveServer) -> Iterator[httpx.Client]:
    """Someone on the internet: no token, no cookie."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def create(agent: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", f"Article {uid()}")
    fields.setdefault("body", "Some help.")
    response = agent.post("/articles", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed_slugs(page: str) -> list[str]:
    return re.findall(r'<a href="/help/([^"/]+)">', page)


def assert_friendly_404(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "find that article" in response.text
    assert 'href="/help"' in response.text


def test_a_published_article_is_shown_to_anyone(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    word = uid()
    article = create(
        agent_client,
        title=f"Change your plan {word}",
        body="Open **Billing**.\n\n## Downgrades\n\nThey apply at renewal.",
        state="published",
    )
    page = visitor.get(f"/help/{article['slug']}")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert f"<h1>Change your plan {word}</h1>" in page.text
    assert "<b>Billing</b>" in page.text and "<h2>Downgrades</h2>" in page.text
    assert '<html lang="en">' in page.text
    assert f'<link rel="canonical" href="{article["url"]}">' in page.text

    index = visitor.get("/help")
    assert index.status_code == 200
    assert article["slug"] in listed_slugs(index.text)
    assert "Open Billing." in index.text  # an excerpt, as text


def test_the_page_language_is_the_articles(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    article = create(
        agent_client, title="Redefinir a senha", body="Olá.", locale="pt-BR", state="published"
    )
    page = visitor.get(f"/help/{article['slug']}")
    assert '<html lang="pt-BR">' in page.text
    index = visitor.get("/help", params={"q": "Redefinir a senha"})
    assert '<li lang="pt-BR">' in index.text


def test_unpublished_articles_are_not_found(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    word = uid()
    draft = create(agent_client, title=f"Draft {word}", body=f"Secret plans {word}.")
    archived = create(agent_client, title=f"Old {word}", body="Retired.", state="published")
    assert visitor.get(f"/help/{archived['slug']}").status_code == 200
    agent_client.post(f"/articles/{archived['id']}/archive").raise_for_status()
    deleted = create(agent_client, title=f"Gone {word}", body="Bye.", state="published")
    assert agent_client.delete(f"/articles/{deleted['id']}").status_code == 204

    for article in (draft, archived, deleted):
        response = visitor.get(f"/help/{article['slug']}")
        assert_friendly_404(response)
        assert word not in response.text
    assert_friendly_404(visitor.get("/help/no-such-article"))

    listing = visitor.get("/help", params={"q": word})
    assert listing.status_code == 200
    assert listed_slugs(listing.text) == []
    assert "No articles match" in listing.text


def test_search_finds_published_articles_by_title_or_body(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    word = uid()
    by_title = create(agent_client, title=f"Export {word}", state="published")
    by_body = create(agent_client, body=f"Use the {word} button.", state="published")
    create(agent_client, title=f"Draft {word}")
    other = create(agent_client, title="Something else", state="published")

    results = visitor.get("/help", params={"q": word})
    assert results.status_code == 200
    assert set(listed_slugs(results.text)) == {by_title["slug"], by_body["slug"]}
    assert other["slug"] not in results.text
    assert f'value="{word}"' in results.text  # the search box keeps the query


def test_the_index_is_paginated(agent_client: httpx.Client, visitor: httpx.Client) -> None:
    word = uid()
    slugs = [
        create(agent_client, title=f"Topic {word} {n}", state="published")["slug"]
        for n in range(21)
    ]
    first = visitor.get("/help", params={"q": word})
    shown = listed_slugs(first.text)
    assert shown == list(reversed(slugs))[:20]  # newest first
    match = re.search(r'<a rel="next" href="([^"]+)">', first.text)
    assert match, first.text
    second = visitor.get(html.unescape(match.group(1)))
    assert listed_slugs(second.text) == [slugs[0]]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    # A nonsense page number is the first page, not an error.
    assert listed_slugs(visitor.get("/help", params={"q": word, "page": "x"}).text) == shown


def test_titles_queries_and_bodies_cannot_inject_markup(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    title = f'<script>alert("t")</script> & <b onmouseover="x()">bold</b> {uid()}'
    article = create(
        agent_client,
        title=title,
        body='<p>Hi</p><script>alert("b")</script><img src=x onerror="alert(1)">',
        body_format="html",
        state="published",
    )
    for page in (
        visitor.get(f"/help/{article['slug']}"),
        visitor.get("/help", params={"q": title[-11:]}),
        visitor.get("/help", params={"q": '"><script>alert("q")</script>'}),
    ):
        assert page.status_code == 200
        assert "<script" not in page.text.lower()
        # No element carries an event handler (escaped, as text, is fine).
        assert not re.search(r"<[^>]*\son\w+=", page.text), page.text
    article_page = visitor.get(f"/help/{article['slug']}").text
    assert "&lt;script&gt;alert(" in article_page  # the title is shown, as text
    assert "<p>Hi</p>" in article_page


def test_security_headers(agent_client: httpx.Client, visitor: httpx.Client) -> None:
    article = create(agent_client, state="published")
    for response in (
        visitor.get("/help"),
        visitor.get(f"/help/{article['slug']}"),
        visitor.get("/help/nothing-here"),
    ):
        csp = response.headers["content-security-policy"]
        directives = dict(
            (part.split()[0], part.split()[1:]) for part in csp.split(";") if part.strip()
        )
        assert directives["default-src"] == ["'none'"]
        assert "script-src" not in directives  # so no script at all, inline or not
        assert "'unsafe-inline'" not in csp
        assert directives["frame-ancestors"] == ["'none'"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] in ("same-origin", "no-referrer")
        assert "<script" not in response.text


def test_the_stylesheet_is_served(visitor: httpx.Client) -> None:
    page = visitor.get("/help")
    href = re.search(r'<link rel="stylesheet" href="([^"]+)">', page.text)
    assert href
    css = visitor.get(href.group(1))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
    assert "body" in css.text


def test_the_help_centre_cannot_write(agent_client: httpx.Client, visitor: httpx.Client) -> None:
    article = create(agent_client, state="published")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert visitor.request(method, f"/help/{article['slug']}").status_code == 405
        assert visitor.request(method, "/help").status_code == 405
    assert visitor.get(f"/help/{article['slug']}").status_code == 200
