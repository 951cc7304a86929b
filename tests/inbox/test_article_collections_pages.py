"""Collections of articles: made and named per language in the inbox (CSRF-checked forms),
articles put in them from their page, and listed in order on the help centre's index of each
language. Over plain HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from support.server import LiveServer
from web_support import Person, Web, new_agent, parse_html, sign_in, start_server, unique

from findesk.knowledge.models import ArticleCollection, CollectionMember

LIST = "/inbox/articles"
COLLECTIONS = "/inbox/article-collections"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        request, request.param, tmp_path_factory.mktemp("collections"), kb_publish_in_process=False
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def me(server: LiveServer) -> Person:
    return new_agent(server, "Cole Curator")


@pytest.fixture(scope="module")
def web(server: LiveServer, me: Person) -> Iterator[Web]:
    signed_in = sign_in(server, me)
    yield signed_in
    signed_in.close()


@pytest.fixture(scope="module")
def visitor(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def published_article(web: Web, title: str) -> tuple[str, str]:
    form = {
        "title": title,
        "body": "Some help.",
        "body_format": "markdown",
        "locale": "en",
        "url": "",
        "action": "publish",
    }
    response = web.post(LIST, form)
    assert response.status_code == 303, response.text[:300]
    article_id = urlsplit(response.headers["location"]).path.rsplit("/", 1)[1]
    page = parse_html(web.get(f"{LIST}/{article_id}").text)
    slug = page.find("a", "public-url").attrs["href"].rsplit("/", 1)[1]
    return article_id, slug


def collection_ids(server: LiveServer) -> dict[str, str]:
    with server.db.read_session() as session:
        return {c.name: c.id for c in session.query(ArticleCollection)}


def sections(page: str) -> list[tuple[str, list[str]]]:
    """The index's collections: (name, article titles), in order."""
    found = []
    for block in re.findall(r'<section class="collection">(.*?)</section>', page, re.S):
        name = re.search(r"<h2>(.*?)</h2>", block, re.S)
        assert name is not None
        titles = re.findall(r'<a href="[^"]+">([^<]+)</a>', block)
        found.append((name.group(1).strip(), titles))
    return found


def test_collections_are_made_named_ordered_and_listed_on_the_help_centre(
    server: LiveServer, web: Web, visitor: httpx.Client
) -> None:
    word = unique("c")
    getting_started, billing = f"Getting started {word}", f"Billing {word}"
    for name, position in ((billing, "2"), (getting_started, "1")):
        made = web.post(
            COLLECTIONS, {"name": name, "description": f"All about {name}", "position": position}
        )
        assert made.status_code == 303, made.text[:300]
    ids = collection_ids(server)
    listing = parse_html(web.get(COLLECTIONS).text)
    rows = [r.attrs["data-collection-id"] for r in listing.find_all("tr", "collection-item")]
    assert rows.index(ids[getting_started]) < rows.index(ids[billing])

    first_id, first_slug = published_article(web, f"Sign up {word}")
    second_id, _ = published_article(web, f"Pay {word}")
    loose_id, _ = published_article(web, f"Loose {word}")
    for article_id, collection in ((first_id, getting_started), (second_id, billing)):
        moved = web.post(f"{LIST}/{article_id}/collection", {"collection_id": ids[collection]})
        assert moved.status_code == 303
    page = parse_html(web.get(f"{LIST}/{first_id}").text)
    chosen = [
        o.attrs["value"]
        for o in page.find("select", id="article-collection").find_all("option")
        if "selected" in o.attrs
    ]
    assert chosen == [ids[getting_started]]

    index = visitor.get("/help").text
    mine = [(n, t) for n, t in sections(index) if word in n]
    assert mine == [(getting_started, [f"Sign up {word}"]), (billing, [f"Pay {word}"])]
    assert f"Loose {word}" in index  # still in the list of every article

    # Named in German, the German index uses that name for the German translation.
    named = web.post(
        f"{COLLECTIONS}/{ids[getting_started]}/names",
        {"locale": "de", "name": f"Erste Schritte {word}", "description": "Los geht's"},
    )
    assert named.status_code == 303
    translated = web.post(
        f"{LIST}/{first_id}/translations/de",
        {
            "title": f"Anmelden {word}",
            "description": "",
            "body": "Hallo.",
            "body_format": "markdown",
            "action": "publish",
        },
    )
    assert translated.status_code == 303
    german = visitor.get("/help/de").text
    assert (f"Erste Schritte {word}", [f"Anmelden {word}"]) in sections(german)
    assert not any(billing == n for n, _ in sections(german))  # nothing of it in German

    # Reordered, renamed, then deleted: its article stays, in no collection.
    saved = web.post(
        f"{COLLECTIONS}/{ids[billing]}",
        {"name": f"Payments {word}", "description": "", "position": "0"},
    )
    assert saved.status_code == 303
    mine = [n for n, _ in sections(visitor.get("/help").text) if word in n]
    assert mine == [f"Payments {word}", getting_started]
    assert web.post(f"{COLLECTIONS}/{ids[billing]}/delete", {}).status_code == 303
    assert f"Payments {word}" not in visitor.get("/help").text
    with server.db.read_session() as session:
        assert session.get(CollectionMember, second_id) is None
    assert visitor.get(f"/help/{first_slug}").status_code == 200
    assert loose_id


def test_collection_forms_are_checked(server: LiveServer, web: Web) -> None:
    before = collection_ids(server)
    blank = web.post(COLLECTIONS, {"name": "   ", "position": ""})
    assert blank.status_code == 422
    assert parse_html(blank.text).find("p", "field-error", id="name-error").text
    assert web.post(COLLECTIONS, {"name": "Fine", "position": "-3"}).status_code == 422
    assert collection_ids(server) == before
    made = web.post(COLLECTIONS, {"name": unique("Named")})
    assert made.status_code == 303
    collection_id = collection_ids(server)[max(set(collection_ids(server)) - set(before))]
    for locale in ("xx", "en", "de-DE"):
        response = web.post(f"{COLLECTIONS}/{collection_id}/names", {"locale": locale, "name": "N"})
        assert response.status_code == 422, locale
    assert (
        web.post(f"{LIST}/art_nothing/collection", {"collection_id": collection_id}).status_code
        == 404
    )
    assert web.get(f"{COLLECTIONS}/acl_nothing").status_code == 404
    # Without the form's token nothing happens.
    forged = web.http.post(COLLECTIONS, data={"name": unique("Forged")})
    assert forged.status_code == 403
