"""The knowledge base's agent API (``/api/v1/articles``) against a live server, on SQLite and on
PostgreSQL. Tests share a module database, so each makes its own articles, with unique words
in their titles where a test searches or counts."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.server import LiveServer

from findesk.knowledge.models import Article

PROBLEM_JSON = "application/problem+json"


def uid(prefix: str = "w") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == status and body["detail"]
    return dict(body)


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", f"Article {uid()}")
    response = client.post("/articles", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def article_count(server: LiveServer) -> int:
    with server.db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(Article)) or 0)


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


# --- create, read, list --------------------------------------------------------------------


def test_create_renders_markdown_and_answers_with_its_location(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    word = uid()
    response = agent_client.post(
        "/articles",
        json={
            "title": f"  Reset   your password {word} ",
            "body": "Open **Settings**, then *Security*.\n\n## Still stuck?\n\n- Ask us\n",
        },
    )
    assert response.status_code == 201, response.text
    article = response.json()
    assert response.headers["location"] == f"/api/v1/articles/{article['id']}"
    assert article["title"] == f"Reset your password {word}"
    assert article["slug"] == f"reset-your-password-{word}"
    assert article["body_format"] == "markdown"
    assert article["body"].startswith("Open **Settings**")  # the source, as written
    assert "<b>Settings</b>" in article["body_html"] and "<i>Security</i>" in article["body_html"]
    assert "<h2>Still stuck?</h2>" in article["body_html"]
    assert "<li>Ask us</li>" in article["body_html"]
    assert article["state"] == "draft" and article["published_at"] is None
    assert article["locale"] == "en"
    assert article["author_id"] == agent_client.agent_id  # type: ignore[attr-defined]
    # Fin cites findesk's own help centre page unless the article has a URL of its own.
    assert article["url"] == f"{server.base_url}/help/{article['slug']}"
    assert article["custom_url"] is None
    assert article["fin"]["publishable"] is False
    assert article["fin"]["page_id"] is None
    assert "draft" in article["fin"]["note"].lower()

    fetched = httpx.get(
        server.base_url + response.headers["location"], headers=agent_client.headers
    )
    assert fetched.status_code == 200
    assert fetched.json() == article


def test_list_searches_filters_by_state_and_pages(agent_client: httpx.Client) -> None:
    word = uid()
    first = create(agent_client, title=f"Billing {word} one", body="Invoices.")
    second = create(agent_client, title="Refunds", body=f"How refunds work ({word}).")
    published = create(agent_client, title=f"Billing {word} two", body="Cards.", state="published")
    create(agent_client, title="Unrelated", body="Nothing to see.")

    found = agent_client.get("/articles", params={"q": word}).json()
    # Title or body match; most recently edited first.
    assert [a["id"] for a in found["items"]] == [published["id"], second["id"], first["id"]]
    assert found["next_offset"] is None

    only_published = agent_client.get("/articles", params={"q": word, "state": "published"})
    assert [a["id"] for a in only_published.json()["items"]] == [published["id"]]

    page_one = agent_client.get("/articles", params={"q": word, "limit": 2}).json()
    assert len(page_one["items"]) == 2 and page_one["next_offset"] == 2
    page_two = agent_client.get("/articles", params={"q": word, "limit": 2, "offset": 2}).json()
    assert [a["id"] for a in page_two["items"]] == [first["id"]]
    assert page_two["next_offset"] is None

    nothing = agent_client.get("/articles", params={"q": uid()}).json()
    assert nothing["items"] == []


def test_search_takes_percent_and_underscore_literally(agent_client: httpx.Client) -> None:
    word = uid()
    literal = create(agent_client, title=f"{word} 100% refund_policy")
    create(agent_client, title=f"{word} 1000 refunds policy")
    for query in (f"{word} 100%", "100% refund_p", f"{word} 100% refund_"):
        found = agent_client.get("/articles", params={"q": query}).json()["items"]
        assert [a["id"] for a in found] == [literal["id"]], query


def test_patch_changes_only_the_fields_given(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    article = create(agent_client, body="Original body.", locale="en-GB")
    path = f"/articles/{article['id']}"

    renamed = agent_client.patch(path, json={"title": "A better title"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["title"] == "A better title"
    assert renamed.json()["body"] == "Original body."
    assert renamed.json()["locale"] == "en-GB"
    assert renamed.json()["slug"] == article["slug"]  # a rename does not break links

    custom = agent_client.patch(path, json={"url": "https://help.example.com/a/1"}).json()
    assert custom["custom_url"] == "https://help.example.com/a/1"
    assert custom["url"] == "https://help.example.com/a/1"  # what Fin cites now

    cleared = agent_client.patch(path, json={"url": None}).json()
    assert cleared["custom_url"] is None
    assert cleared["url"] == f"{server.base_url}/help/{article['slug']}"

    as_html = agent_client.patch(
        path, json={"body": "<p>Now <strong>HTML</strong></p>", "body_format": "html"}
    ).json()
    assert as_html["body_html"] == "<p>Now <b>HTML</b></p>"
    assert as_html["title"] == "A better title"

    unchanged = agent_client.patch(path, json={})
    assert unchanged.status_code == 200 and unchanged.json() == as_html


def test_publish_archive_and_publish_again(agent_client: httpx.Client) -> None:
    article = create(agent_client, body="Some help.")
    published = agent_client.post(f"/articles/{article['id']}/publish")
    assert published.status_code == 200, published.text
    body = published.json()
    assert body["state"] == "published" and body["published_at"] is not None
    assert body["fin"]["publishable"] is True and body["fin"]["note"] is None

    archived = agent_client.post(f"/articles/{article['id']}/archive").json()
    assert archived["state"] == "archived"
    assert archived["fin"]["publishable"] is False
    assert "archived" in archived["fin"]["note"].lower()

    again = agent_client.patch(f"/articles/{article['id']}", json={"state": "published"}).json()
    assert again["state"] == "published"
    assert agent_client.get(f"/articles/{article['id']}").json()["state"] == "published"


def test_delete_removes_the_article(agent_client: httpx.Client) -> None:
    word = uid()
    article = create(agent_client, title=f"Doomed {word}", body="Bye.", state="published")
    deleted = agent_client.delete(f"/articles/{article['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_problem(agent_client.get(f"/articles/{article['id']}"), 404)
    assert agent_client.get("/articles", params={"q": word}).json()["items"] == []
    assert_problem(agent_client.delete(f"/articles/{article['id']}"), 404)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"title": "x"}),
        ("DELETE", "", None),
        ("POST", "/publish", None),
        ("POST", "/archive", None),
    ],
)
def test_an_unknown_article_is_a_404_problem(
    agent_client: httpx.Client, method: str, suffix: str, body: Any
) -> None:
    response = agent_client.request(method, f"/articles/art_nope{suffix}", json=body)
    assert_problem(response, 404)


# --- the rules -------------------------------------------------------------------------------


def test_slugs_stay_unique(agent_client: httpx.Client) -> None:
    title = f"Same title {uid()}"
    first = create(agent_client, title=title)
    second = create(agent_client, title=title)
    assert second["slug"] == f"{first['slug']}-2"

    explicit = create(agent_client, slug=first["slug"])
    assert explicit["slug"] == f"{first['slug']}-3"

    word = uid()
    moved = agent_client.patch(f"/articles/{second['id']}", json={"slug": f"My Slug {word}!"})
    assert moved.json()["slug"] == f"my-slug-{word}"
    clash = agent_client.patch(f"/articles/{explicit['id']}", json={"slug": first["slug"]})
    assert clash.json()["slug"] != first["slug"]


def test_an_article_without_a_body_cannot_be_published(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    empty = create(agent_client, body="   ")
    refused = assert_problem(agent_client.post(f"/articles/{empty['id']}/publish"), 422)
    assert "body" in refused["detail"]
    assert agent_client.get(f"/articles/{empty['id']}").json()["state"] == "draft"

    # Not by creating it published either, nor with only markup that shows nothing.
    before = article_count(server)
    for body in ("", "<p></p>", "<script>alert(1)</script>"):
        response = agent_client.post(
            "/articles",
            json={"title": "Empty", "body": body, "body_format": "html", "state": "published"},
        )
        assert_problem(response, 422)
    assert article_count(server) == before

    # Nor by emptying one that is published.
    live = create(agent_client, body="Real content.", state="published")
    assert_problem(agent_client.patch(f"/articles/{live['id']}", json={"body": ""}), 422)
    kept = agent_client.get(f"/articles/{live['id']}").json()
    assert kept["body"] == "Real content." and kept["state"] == "published"


def test_a_non_english_article_is_not_publishable_to_fin(agent_client: httpx.Client) -> None:
    article = create(
        agent_client, title="Réinitialiser", body="Bonjour.", locale="fr", state="published"
    )
    assert article["state"] == "published"  # still in the help centre
    assert article["fin"]["publishable"] is False
    assert article["fin"]["note"].startswith("Not publishable: external pages are English only")
    english = agent_client.patch(f"/articles/{article['id']}", json={"locale": "en-US"}).json()
    assert english["fin"]["publishable"] is True and english["fin"]["note"] is None


def test_html_is_sanitised(agent_client: httpx.Client) -> None:
    dangerous = (
        '<p onclick="steal()">Hi <script>alert(1)</script>'
        '<a href="javascript:alert(2)">click</a> <a href="https://ok.example/">ok</a>'
        '<img src="x" onerror="alert(3)"><iframe src="https://evil.example/"></iframe></p>'
    )
    for body_format in ("html", "markdown"):
        article = create(agent_client, body=dangerous, body_format=body_format)
        html = article["body_html"]
        assert "<script" not in html and "alert(1)" not in html
        assert "onclick" not in html and "onerror" not in html and "<iframe" not in html
        assert not any(h.lower().startswith("javascript:") for h in hrefs(html)), html
        assert "https://ok.example/" in hrefs(html)
        assert article["body"] == dangerous  # the source is kept as written

    markdown_link = create(agent_client, body="[click](javascript:alert(1)) and [ok](https://a.b/)")
    assert hrefs(markdown_link["body_html"]) == ["https://a.b/"]


def test_preview_renders_without_saving(server: LiveServer, agent_client: httpx.Client) -> None:
    before = article_count(server)
    response = agent_client.post(
        "/articles/preview", json={"body": "# Hello\n\n**x** <script>bad()</script>"}
    )
    assert response.status_code == 200, response.text
    html = response.json()["html"]
    assert "<h1>Hello</h1>" in html and "<b>x</b>" in html and "<script" not in html
    as_html = agent_client.post(
        "/articles/preview", json={"body": "# not a heading", "body_format": "html"}
    )
    assert as_html.json()["html"] == "# not a heading"
    assert article_count(server) == before


# --- bad requests ----------------------------------------------------------------------------

BAD_CREATES = {
    "no title": {"body": "x"},
    "blank title": {"title": "   "},
    "title too long": {"title": "t" * 300},
    "unknown field": {"title": "ok", "colour": "red"},
    "bad state": {"title": "ok", "state": "live"},
    "bad body format": {"title": "ok", "body_format": "rst"},
    "javascript url": {"title": "ok", "url": "javascript:alert(1)"},
    "relative url": {"title": "ok", "url": "/somewhere"},
    "bad locale": {"title": "ok", "locale": "english!"},
    "title not text": {"title": 42},
    "body too large": {"title": "ok", "body": "x" * (512 * 1024 + 1)},
}


def test_invalid_creates_are_422_problems_and_create_nothing(
    server: LiveServer, agent_client: httpx.Client
) -> None:
    before = article_count(server)
    for name, body in BAD_CREATES.items():
        response = agent_client.post("/articles", json=body)
        assert response.status_code in (413, 422), (name, response.text)
        assert_problem(response, response.status_code)
    assert article_count(server) == before


BAD_PATCHES = {
    "null title": {"title": None},
    "null state": {"state": None},
    "blank title": {"title": " "},
    "unknown field": {"author_id": "agt_someone"},
    "bad state": {"state": "gone"},
    "bad url": {"url": "ftp://files.example.com/a"},
    "bad locale": {"locale": "x"},
}


def test_invalid_patches_are_422_problems_and_change_nothing(agent_client: httpx.Client) -> None:
    article = create(agent_client, body="Stays.")
    for name, body in BAD_PATCHES.items():
        response = agent_client.patch(f"/articles/{article['id']}", json=body)
        assert response.status_code == 422, (name, response.text)
        assert_problem(response, 422)
    assert agent_client.get(f"/articles/{article['id']}").json() == article


def test_bad_list_parameters_are_422(agent_client: httpx.Client) -> None:
    for params in ({"state": "deleted"}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        assert_problem(agent_client.get("/articles", params=params), 422)


def test_the_agent_api_needs_an_agent_token(server: LiveServer, agent_client: httpx.Client) -> None:
    article = create(agent_client, body="Private draft.")
    before = article_count(server)
    anonymous = httpx.Client(base_url=f"{server.base_url}/api/v1", timeout=30)
    wrong = httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": "Bearer fpt_not-a-token"},
        timeout=30,
    )
    calls = [
        ("GET", "/articles", None),
        ("POST", "/articles", {"title": "Sneaky", "body": "x"}),
        ("POST", "/articles/preview", {"body": "x"}),
        ("GET", f"/articles/{article['id']}", None),
        ("PATCH", f"/articles/{article['id']}", {"title": "Hacked"}),
        ("DELETE", f"/articles/{article['id']}", None),
        ("POST", f"/articles/{article['id']}/publish", None),
        ("POST", f"/articles/{article['id']}/archive", None),
    ]
    with anonymous, wrong:
        for client in (anonymous, wrong):
            for method, path, body in calls:
                response = client.request(method, path, json=body)
                assert_problem(response, 401)
                assert response.headers["www-authenticate"].lower().startswith("bearer")
                assert "Private draft" not in response.text
    assert article_count(server) == before
    assert agent_client.get(f"/articles/{article['id']}").json() == article


def test_the_openapi_document_lists_the_article_routes(server: LiveServer) -> None:
    paths = httpx.get(f"{server.base_url}/openapi.json").json()["paths"]
    assert set(paths["/api/v1/articles"]) == {"get", "post"}
    assert set(paths["/api/v1/articles/{article_id}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/api/v1/articles/preview"]
    assert "post" in paths["/api/v1/articles/{article_id}/publish"]
    assert not any(path.startswith("/help") for path in paths)
