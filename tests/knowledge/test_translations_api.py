"""Article translations through the agent API (``/api/v1/articles/{id}/translations``) and
the help centre's pages per language, against a live server on SQLite and PostgreSQL."""

from __future__ import annotations

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
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def create(agent: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", f"Article {uid()}")
    fields.setdefault("body", "Some help.")
    response = agent.post("/articles", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def translate(agent: httpx.Client, article_id: str, **fields: Any) -> httpx.Response:
    fields.setdefault("title", f"Titel {uid()}")
    fields.setdefault("body", "Etwas Hilfe.")
    return agent.post(f"/articles/{article_id}/translations", json=fields)


def problem_field(response: httpx.Response) -> str | None:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    errors = response.json().get("errors") or [{}]
    return errors[0].get("field") or errors[0].get("loc", [None])[-1]


# --- the agent API -----------------------------------------------------------------------------


def test_translations_are_created_listed_updated_and_deleted_per_locale(
    agent_client: httpx.Client, server: LiveServer
) -> None:
    article = create(agent_client, title="Reset your password", state="published")
    path = f"/articles/{article['id']}/translations"

    created = translate(
        agent_client,
        article["id"],
        locale="de",
        title="Passwort zurücksetzen",
        description="In zwei Schritten.",
        body="Öffnen Sie **Konto**.",
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/v1{path}/de"
    german = created.json()
    assert (german["locale"], german["state"], german["title"]) == (
        "de",
        "draft",
        "Passwort zurücksetzen",
    )
    assert german["body_html"] == "<p>Öffnen Sie <b>Konto</b>.</p>"
    assert german["url"].endswith(f"/help/de/{article['slug']}")
    assert german["intercom"]["article_id"] is None and not german["intercom_current"]

    # A lower-case spelling of one of Intercom's codes is that code.
    brazil = translate(agent_client, article["id"], locale="pt-br", state="published")
    assert brazil.status_code == 201, brazil.text
    assert brazil.json()["locale"] == "pt-BR"

    listed = agent_client.get(path).json()["items"]
    assert [t["locale"] for t in listed] == ["de", "pt-BR"]

    patched = agent_client.patch(f"{path}/de", json={"state": "published", "body": "Neu."})
    assert patched.status_code == 200, patched.text
    assert patched.json()["state"] == "published" and patched.json()["published_at"]
    assert agent_client.get(f"{path}/de").json()["body_html"] == "<p>Neu.</p>"

    # The article itself tells that Intercom's copy is now due.
    assert agent_client.get(f"/articles/{article['id']}").json()["intercom"]["pending"]

    assert agent_client.delete(f"{path}/pt-BR").status_code == 204
    assert agent_client.get(f"{path}/pt-BR").status_code == 404
    assert [t["locale"] for t in agent_client.get(path).json()["items"]] == ["de"]


def test_bad_translations_are_refused_with_a_clear_error(agent_client: httpx.Client) -> None:
    article = create(agent_client)
    path = f"/articles/{article['id']}/translations"
    for locale in ("xx", "de-DE", "english", "fr_CA", ""):
        refused = translate(agent_client, article["id"], locale=locale)
        assert refused.status_code == 422, (locale, refused.text)
        if locale:
            assert "one of Intercom's help centre languages" in refused.json()["detail"]
            assert "pt-BR, zh-CN, zh-TW" in refused.json()["detail"]
    # The article's own language is edited on the article.
    own = translate(agent_client, article["id"], locale="en")
    assert own.status_code == 422 and problem_field(own) == "locale"
    assert translate(agent_client, article["id"], locale="it").status_code == 201
    assert translate(agent_client, article["id"], locale="it").status_code == 409
    # Published needs a body; titles are held to the article's rules.
    empty = translate(agent_client, article["id"], locale="fi", body="", state="published")
    assert empty.status_code == 422 and problem_field(empty) == "body"
    for bad in ({"title": "  "}, {"title": None}, {"state": "gone"}, {"colour": "red"}):
        response = agent_client.patch(f"{path}/it", json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert agent_client.patch(f"{path}/sv", json={"title": "x"}).status_code == 404
    assert agent_client.get("/articles/art_nothing/translations").status_code == 404
    assert [t["locale"] for t in agent_client.get(path).json()["items"]] == ["it"]
    # Nor may the article itself move into a language it has a translation in.
    moved = agent_client.patch(f"/articles/{article['id']}", json={"locale": "it-IT"})
    assert moved.status_code == 422 and problem_field(moved) == "locale"
    assert agent_client.get(f"/articles/{article['id']}").json()["locale"] == "en"


def test_translations_need_an_agent_token(server: LiveServer, agent_client: httpx.Client) -> None:
    article = create(agent_client)
    assert translate(agent_client, article["id"], locale="da").status_code == 201
    path = f"/articles/{article['id']}/translations"
    with httpx.Client(base_url=f"{server.base_url}/api/v1", timeout=30) as anonymous:
        for method, url, body in (
            ("GET", path, None),
            ("POST", path, {"locale": "nl", "title": "x"}),
            ("GET", f"{path}/da", None),
            ("PATCH", f"{path}/da", {"title": "Hacked"}),
            ("DELETE", f"{path}/da", None),
        ):
            assert anonymous.request(method, url, json=body).status_code == 401
    assert [t["locale"] for t in agent_client.get(path).json()["items"]] == ["da"]


# --- the help centre per language ----------------------------------------------------------------


def test_each_language_has_its_pages_with_alternates_and_a_switcher(
    agent_client: httpx.Client, visitor: httpx.Client, server: LiveServer
) -> None:
    word = uid()
    article = create(agent_client, title=f"Billing {word}", body="Pay **monthly**.")
    agent_client.post(f"/articles/{article['id']}/publish").raise_for_status()
    slug = article["slug"]
    translate(
        agent_client,
        article["id"],
        locale="de",
        title=f"Abrechnung {word}",
        description="Monatlich zahlen.",
        body="Zahlen Sie **monatlich**.",
        state="published",
    ).raise_for_status()
    translate(
        agent_client, article["id"], locale="fr", title=f"Brouillon {word}", body="Non."
    ).raise_for_status()

    german = visitor.get(f"/help/de/{slug}")
    assert german.status_code == 200, german.text
    assert '<html lang="de">' in german.text
    assert f"<h1>Abrechnung {word}</h1>" in german.text
    assert "Zahlen Sie <b>monatlich</b>." in german.text
    base = server.base_url
    links = dict(
        re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', german.text)
    )
    assert links == {
        "de": f"{base}/help/de/{slug}",
        "en": f"{base}/help/en/{slug}",
        "x-default": f"{base}/help/{slug}",
    }
    switcher = re.search(r'<nav class="languages".*?</nav>', german.text, re.S)
    assert switcher is not None
    assert f'href="/help/en/{slug}"' in switcher.group(0) and "English" in switcher.group(0)
    assert '<span aria-current="true" lang="de">Deutsch</span>' in switcher.group(0)

    english = visitor.get(f"/help/{slug}")  # the English URL works as before
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert f'hreflang="de" href="{base}/help/de/{slug}"' in english.text
    assert visitor.get(f"/help/en/{slug}").status_code == 200

    # The draft French one is nowhere; nor is an unknown locale.
    assert visitor.get(f"/help/fr/{slug}").status_code == 404
    assert "Brouillon" not in visitor.get("/help/fr").text
    assert visitor.get(f"/help/xx/{slug}").status_code == 404
    assert visitor.get(f"/help/de-DE/{slug}").status_code == 404

    # The German index lists the German title; searching finds it by its German words.
    index = visitor.get("/help/de", params={"q": word})
    assert index.status_code == 200 and '<html lang="de">' in index.text
    assert f'<a href="/help/de/{slug}">Abrechnung {word}</a>' in index.text
    assert 'action="/help/de"' in index.text
    assert f"Billing {word}" not in index.text

    # Archiving the article takes every language down.
    agent_client.post(f"/articles/{article['id']}/archive").raise_for_status()
    assert visitor.get(f"/help/de/{slug}").status_code == 404
    assert visitor.get(f"/help/{slug}").status_code == 404


def test_the_language_is_negotiated_from_accept_language(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    article = create(agent_client, title=f"Plans {uid()}", state="published")
    slug = article["slug"]
    translate(agent_client, article["id"], locale="es", state="published").raise_for_status()

    index = visitor.get("/help", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert index.status_code == 302 and index.headers["location"] == "/help/es"
    assert "accept-language" in index.headers["vary"].lower()
    page = visitor.get(f"/help/{slug}", headers={"Accept-Language": "es"})
    assert page.status_code == 302 and page.headers["location"] == f"/help/es/{slug}"
    assert "accept-language" in page.headers["vary"].lower()

    # English first, an unknown language, or none at all: the English pages, no redirect.
    for header in ("en-GB,es;q=0.5", "tlh", None):
        headers = {"Accept-Language": header} if header else {}
        plain = visitor.get(f"/help/{slug}", headers=headers)
        assert plain.status_code == 200, header
        assert "accept-language" in plain.headers["vary"].lower()
    assert visitor.get("/help", headers={"Accept-Language": "en"}).status_code == 200

    # An article published only in German: its English URL leads to the German page.
    german_only = create(agent_client, title=f"Nur {uid()}")
    translate(agent_client, german_only["id"], locale="de", state="published").raise_for_status()
    moved = visitor.get(f"/help/{german_only['slug']}")
    assert moved.status_code == 302
    assert moved.headers["location"] == f"/help/de/{german_only['slug']}"


def test_a_right_to_left_language_is_marked(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    article = create(agent_client, title=f"Help {uid()}", state="published")
    translate(
        agent_client, article["id"], locale="ar", title="مساعدة", state="published"
    ).raise_for_status()
    page = visitor.get(f"/help/ar/{article['slug']}")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert "<h1>مساعدة</h1>" in page.text


def test_a_slug_never_hides_behind_a_language_index(
    agent_client: httpx.Client, visitor: httpx.Client
) -> None:
    article = create(agent_client, title="It", state="published")  # "it": Italian's code
    assert article["slug"] != "it" and article["slug"].startswith("it-")
    assert (
        visitor.get(article["url"].replace(visitor.base_url.__str__().rstrip("/"), "")).status_code
        == 200
    )
