"""The emulator's Articles API over HTTP, as findesk's publisher calls Intercom's, on SQLite and
PostgreSQL (the articles live in the emulator's database next to the content library)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from content_api_server import TOKEN, ServedApp
from support.server import database_url
from test_content_api import assert_error

from findesk.emulator.articles_api import LOCALES, articles_of
from findesk.emulator.content_api import create_content_api

HELP = "http://help.test/help"
ARTICLE_KEYS = {
    "type", "id", "workspace_id", "title", "description", "body", "author_id", "state",
    "created_at", "updated_at", "url", "parent_id", "parent_type", "default_locale",
    "translated_content",
}  # fmt: skip
CONTENT_KEYS = {
    "type", "title", "description", "body", "author_id", "state", "created_at", "updated_at",
    "url",
}  # fmt: skip
MISSING_AUTHOR = "author_id must be in the main body or default locale translated_content object"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    url = database_url(request.param, request, tmp_path_factory.mktemp("articles"))
    app = create_content_api(
        url, [TOKEN], 100_000, 10, articles={"teammate_ids": [7, 8], "help_center_url": HELP}
    )
    app_served = ServedApp(app)
    yield app_served
    app_served.stop()


@pytest.fixture
def api(served: ServedApp) -> Iterator[httpx.Client]:
    with served.client() as client:
        yield client


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = api.post("/articles", json={"title": "Refunds", "author_id": 7, **fields})
    assert response.status_code == 200, response.text
    return dict(response.json())


def german(**fields: Any) -> dict[str, Any]:
    return {
        "type": "article_translated_content",
        "de": {
            "type": "article_content",
            "title": "Rückerstattungen",
            "body": "<p>Rückerstattungen dauern 5 Werktage.</p>",
            "state": "published",
            **fields,
        },
    }


# --- create and read ----------------------------------------------------------------------------


def test_create_answers_the_article_with_its_translations(api: httpx.Client) -> None:
    before = int(time.time())
    article = create(
        api,
        description="Money back",
        body="<p>Refunds take 5 business days.</p>",
        state="published",
        parent_id=12,
        translated_content=german(),
    )
    assert set(article) == ARTICLE_KEYS | {"statistics"}
    assert article["type"] == "article"
    assert isinstance(article["id"], str) and article["id"].isdigit()
    assert article["workspace_id"] and article["default_locale"] == "en"
    assert article["title"] == "Refunds" and article["description"] == "Money back"
    assert article["body"] == "<p>Refunds take 5 business days.</p>"
    assert article["author_id"] == 7 and article["state"] == "published"
    assert article["parent_id"] == 12 and article["parent_type"] == "collection"
    for stamp in ("created_at", "updated_at"):
        assert isinstance(article[stamp], int) and before <= article[stamp] <= time.time() + 1
    assert article["url"] == f"{HELP}/en/articles/{article['id']}-refunds"
    assert article["statistics"]["type"] == "article_statistics"

    translated = article["translated_content"]
    assert translated["type"] == "article_translated_content"
    assert set(translated) == {"type", "en", "de"}
    de = translated["de"]
    assert set(de) == CONTENT_KEYS
    assert de["type"] == "article_content" and de["title"] == "Rückerstattungen"
    assert de["author_id"] == 7  # the article's author, as none was given for the locale
    assert de["state"] == "published"
    assert de["url"] == f"{HELP}/de/articles/{article['id']}-rueckerstattungen"
    assert translated["en"]["title"] == "Refunds" and translated["en"]["url"] == article["url"]

    got = api.get(f"/articles/{article['id']}")
    assert got.status_code == 200 and got.json() == article


def test_state_defaults_to_draft_and_author_may_come_from_the_default_locale(
    api: httpx.Client,
) -> None:
    response = api.post(
        "/articles",
        json={
            "title": "Exports",
            "translated_content": {
                "en": {"title": "Ignored", "author_id": 8},
                "fr": {"title": "E"},
            },
        },
    )
    assert response.status_code == 200, response.text
    article = response.json()
    assert article["author_id"] == 8 and article["title"] == "Exports"  # top level wins
    assert article["state"] == "draft"
    assert article["translated_content"]["fr"]["state"] == "draft"
    assert article["parent_id"] is None and article["parent_type"] is None


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"author_id": 7}, 400, "parameter_not_found", "title"),
        ({"title": "  ", "author_id": 7}, 400, "parameter_invalid", "title"),
        ({"title": "T", "author_id": 99}, 400, "parameter_invalid", "author_id"),
        ({"title": "T", "author_id": "7"}, 400, "parameter_invalid", "author_id"),
        ({"title": "T", "author_id": 7, "state": "live"}, 400, "parameter_invalid", "state"),
        ({"title": "T", "author_id": 7, "parent_id": -1}, 400, "parameter_invalid", "parent_id"),
        (
            {"title": "T", "author_id": 7, "parent_id": 1, "parent_type": "shelf"},
            400,
            "parameter_invalid",
            "parent_type",
        ),
        (
            {"title": "T", "author_id": 7, "translated_content": {"xx": {"title": "X"}}},
            400,
            "parameter_invalid",
            "translated_content.xx",
        ),
        (
            {"title": "T", "author_id": 7, "translated_content": {"pt-br": {"title": "X"}}},
            400,
            "parameter_invalid",
            "translated_content.pt-br",
        ),
        (
            {"title": "T", "author_id": 7, "translated_content": {"de": {"body": "<p>x</p>"}}},
            400,
            "parameter_not_found",
            "translated_content.de.title",
        ),
        (
            {
                "title": "T",
                "author_id": 7,
                "translated_content": {"de": {"title": "X", "author_id": 3}},
            },
            400,
            "parameter_invalid",
            "translated_content.de.author_id",
        ),
        (
            {"title": "T", "author_id": 7, "translated_content": {"de": "Hallo"}},
            400,
            "parameter_invalid",
            "translated_content.de",
        ),
        (
            {"title": "T", "author_id": 7, "translated_content": {"en": "Hello"}},
            400,
            "parameter_invalid",
            "translated_content.en",
        ),
        (
            {"title": "T", "author_id": 7, "translated_content": []},
            400,
            "parameter_invalid",
            "translated_content",
        ),
    ],
)
def test_create_validation(
    api: httpx.Client, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    assert_error(api.post("/articles", json=body), status, code, field)


def test_missing_author_is_intercoms_parameter_not_found(api: httpx.Client) -> None:
    response = api.post(
        "/articles",
        json={"title": "T", "translated_content": {"de": {"title": "D", "author_id": 7}}},
    )
    assert_error(response, 400, "parameter_not_found", "author_id")
    assert response.json()["errors"][0]["message"] == MISSING_AUTHOR
    assert_error(api.post("/articles", json=[1]), 400, "bad_request")


def test_every_intercom_locale_is_accepted(api: httpx.Client) -> None:
    translated = {locale: {"title": f"T {locale}"} for locale in LOCALES if locale != "en"}
    article = create(api, translated_content=translated)
    assert set(article["translated_content"]) == {"type", *LOCALES}
    assert article["translated_content"]["zh-TW"]["url"].startswith(f"{HELP}/zh-TW/articles/")


# --- list, update, delete, search ---------------------------------------------------------------


def test_list_is_most_recently_updated_first_in_pages(served: ServedApp, api: httpx.Client) -> None:
    first, second, third = (create(api, title=f"Listed {n}") for n in range(3))
    # Touch the first: it becomes the most recently updated (times are whole seconds).
    deadline = time.monotonic() + 5
    while int(time.time()) <= third["updated_at"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    touched = api.put(f"/articles/{first['id']}", json={"description": "touched"})
    assert touched.status_code == 200

    listed = api.get("/articles", params={"per_page": 2}).json()
    assert listed["type"] == "list"
    total = listed["total_count"]
    assert total >= 3 and listed["pages"]["type"] == "pages"
    assert listed["pages"]["page"] == 1 and listed["pages"]["per_page"] == 2
    assert listed["pages"]["total_pages"] == -(-total // 2)
    assert [a["id"] for a in listed["data"]] == [first["id"], third["id"]]
    assert "statistics" not in listed["data"][0]
    assert set(listed["data"][0]) == ARTICLE_KEYS

    seen = [a["id"] for a in listed["data"]]
    next_url = listed["pages"]["next"]
    while next_url is not None:
        page = api.get(next_url).json()
        seen += [a["id"] for a in page["data"]]
        next_url = page["pages"]["next"]
    assert len(seen) == total == len(set(seen))
    assert seen.index(third["id"]) < seen.index(second["id"])
    updated = [
        a["updated_at"] for a in api.get("/articles", params={"per_page": 150}).json()["data"]
    ]
    assert updated == sorted(updated, reverse=True)
    assert_error(api.get("/articles", params={"per_page": 0}), 400, "parameter_invalid", "per_page")


def test_put_changes_only_what_is_sent_and_merges_locales(api: httpx.Client) -> None:
    article = create(
        api, body="<p>English</p>", description="D", state="published", translated_content=german()
    )
    aid = article["id"]
    response = api.put(
        f"/articles/{aid}",
        json={
            "translated_content": {
                "de": {"state": "draft"},
                "fr": {"title": "Remboursements", "body": "<p>Français</p>", "state": "published"},
            }
        },
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "Refunds" and updated["body"] == "<p>English</p>"
    assert updated["description"] == "D" and updated["state"] == "published"
    de = updated["translated_content"]["de"]
    assert de["state"] == "draft" and de["title"] == "Rückerstattungen"
    assert de["body"] == "<p>Rückerstattungen dauern 5 Werktage.</p>"
    fr = updated["translated_content"]["fr"]
    assert fr["title"] == "Remboursements" and fr["author_id"] == 7
    assert updated["created_at"] == article["created_at"]

    renamed = api.put(f"/articles/{aid}", json={"title": "Refunds and returns", "parent_id": 4})
    body = renamed.json()
    assert body["title"] == "Refunds and returns" and body["parent_id"] == 4
    assert body["url"].endswith(f"/en/articles/{aid}-refunds-and-returns")
    assert set(body["translated_content"]) == {"type", "en", "de", "fr"}
    moved = api.put(f"/articles/{aid}", json={"parent_type": "section"}).json()
    assert (moved["parent_id"], moved["parent_type"]) == (4, "section")
    detached = api.put(f"/articles/{aid}", json={"parent_id": None}).json()
    assert (detached["parent_id"], detached["parent_type"]) == (None, None)

    removed = api.put(f"/articles/{aid}", json={"translated_content": {"fr": None}})
    assert set(removed.json()["translated_content"]) == {"type", "en", "de"}
    assert_error(
        api.put(f"/articles/{aid}", json={"translated_content": {"en": None}}),
        400,
        "parameter_invalid",
        "translated_content.en",
    )
    assert_error(
        api.put(f"/articles/{aid}", json={"translated_content": {"it": {"state": "published"}}}),
        400,
        "parameter_not_found",
        "translated_content.it.title",
    )
    assert_error(
        api.put(f"/articles/{aid}", json={"author_id": 1}), 400, "parameter_invalid", "author_id"
    )
    assert_error(
        api.put(f"/articles/{aid}", json={"title": None}), 400, "parameter_not_found", "title"
    )
    assert api.get(f"/articles/{aid}").json()["translated_content"]["de"]["state"] == "draft"


def test_delete_and_unknown_ids(api: httpx.Client) -> None:
    aid = create(api)["id"]
    deleted = api.delete(f"/articles/{aid}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": aid, "object": "article", "deleted": True}
    for method in ("GET", "PUT", "DELETE"):
        assert_error(api.request(method, f"/articles/{aid}", json={}), 404, "not_found")
    assert_error(api.get("/articles/abc"), 404, "not_found")
    assert_error(api.get("/articles/99999999999999999999"), 404, "not_found")


def test_search_by_phrase_and_state(api: httpx.Client) -> None:
    published = create(api, title="Zebra crossings", state="published")
    draft = create(api, title="Zebra stripes")
    german_only = create(api, title="Other", translated_content=german(title="Zebrastreifen Ärger"))
    found = api.get("/articles/search", params={"phrase": "zebra"}).json()
    assert found["type"] == "list" and found["data"]["highlights"] == []
    ids = {a["id"] for a in found["data"]["articles"]}
    assert {published["id"], draft["id"]} <= ids and german_only["id"] not in ids
    assert found["total_count"] == len(found["data"]["articles"])
    only_published = api.get("/articles/search", params={"phrase": "zebra", "state": "published"})
    assert [a["id"] for a in only_published.json()["data"]["articles"]] == [published["id"]]
    umlaut = api.get("/articles/search", params={"phrase": "ärger"}).json()
    assert [a["id"] for a in umlaut["data"]["articles"]] == [german_only["id"]]
    assert_error(
        api.get("/articles/search", params={"state": "live"}), 400, "parameter_invalid", "state"
    )


def test_the_answerer_reads_published_locales_only(served: ServedApp, api: httpx.Client) -> None:
    article = create(api, title="Visible draft", translated_content=german(title="Sichtbar"))
    pages = [p for p in articles_of(served.app).published_pages() if p.id == int(article["id"])]
    assert [(p.locale, p.title) for p in pages] == [("de", "Sichtbar")]  # English is a draft
    assert pages[0].url == article["translated_content"]["de"]["url"]


# --- shared auth and rate limit -----------------------------------------------------------------


def test_articles_need_the_bearer_token(served: ServedApp) -> None:
    with served.client(token="wrong") as stranger:
        for method, path in [
            ("GET", "/articles"),
            ("POST", "/articles"),
            ("DELETE", "/articles/1"),
        ]:
            response = stranger.request(method, path, json={"title": "T", "author_id": 7})
            assert_error(response, 401, "unauthorized")
            assert "X-RateLimit-Remaining" not in response.headers


def test_articles_share_the_content_apis_rate_limit(tmp_path: Any) -> None:
    now = [1_000_000.0]
    app = create_content_api(
        f"sqlite:///{tmp_path / 'limited.db'}",
        [TOKEN],
        3,
        10.0,
        clock=lambda: now[0],
        articles={"teammate_ids": [7]},
    )
    limited = ServedApp(app)
    try:
        with limited.client() as client:
            created = client.post("/articles", json={"title": "A", "author_id": 7})
            assert created.status_code == 200
            assert created.headers["X-RateLimit-Limit"] == "3"
            assert created.headers["X-RateLimit-Remaining"] == "2"
            assert client.get("/ai/external_pages").headers["X-RateLimit-Remaining"] == "1"
            assert client.get("/articles").headers["X-RateLimit-Remaining"] == "0"
            refused = client.get(f"/articles/{created.json()['id']}")
            assert_error(refused, 429, "rate_limit_exceeded")
            assert refused.headers["X-RateLimit-Reset"] == "1000010"
            assert client.get("/ai/external_pages").status_code == 429
            now[0] = 1_000_010.0  # the next window
            again = client.get(f"/articles/{created.json()['id']}")
            assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"
    finally:
        limited.stop()
