"""The publisher's Articles API phase (issue 15): articles with a published translation other
than English become one Intercom help centre article each, with ``translated_content`` per
locale; English stays an external page only. Real HTTP on loopback against the emulator's AI
Content and Articles APIs (one base URL, one token, as Intercom), behind the fault tap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator.content_api_server import TOKEN, ServedApp
from support.server import database_url
from support.tap import Tap, Traffic

from findesk.emulator.content_api import create_content_api
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.knowledge import service
from findesk.knowledge.intercom_articles import NO_AUTHOR
from findesk.knowledge.models import Article, ArticleTranslation
from findesk.knowledge.publisher import Publisher
from findesk.knowledge.service import ArticleDraft, TranslationDraft
from findesk.migrations import upgrade

BASE = "https://help.example.com"
AUTHOR = 991_234


class Intercom:
    """The emulator's AI Content and Articles APIs on one loopback base URL, tapped."""

    def __init__(self, db_path: Path) -> None:
        app = create_content_api(
            f"sqlite:///{db_path}", [TOKEN], 100_000, 10.0, articles={"teammate_ids": (AUTHOR,)}
        )
        self.traffic = Traffic(default_path="/articles")
        app.add_middleware(Tap, traffic=self.traffic)
        self.served = ServedApp(app)
        self.base_url = self.served.base_url
        self.token = TOKEN

    def external_ids(self) -> list[str]:
        return [p.external_id for p in self.served.store.list_pages(0, 1_000_000)[0]]

    def stop(self) -> None:
        self.served.stop()


@pytest.fixture
def intercom(tmp_path: Path) -> Iterator[Intercom]:
    served = Intercom(tmp_path / "intercom.db")
    yield served
    served.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = database_url(request.param, request, tmp_path)
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def settings(db: Database, intercom: Intercom, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db.url,
        "intercom_access_token": intercom.token,
        "intercom_api_url": intercom.base_url,
        "intercom_article_author_id": AUTHOR,
        "public_base_url": BASE,
        "kb_retry_seconds": 30,
        **overrides,
    }
    return Settings(**values)


def publisher(db: Database, intercom: Intercom, **overrides: Any) -> Publisher:
    return Publisher(
        db, settings(db, intercom, **overrides), retry_delays=(0.01, 0.02), max_rate_limit_wait=5
    )


def new_article(db: Database, title: str, *, state: str = "published", **fields: Any) -> str:
    with db.transaction() as session:
        draft = ArticleDraft(title=title, body=f"About **{title}**.", state=state, **fields)
        return service.create_article(session, draft, None).id


def translate(db: Database, article_id: str, locale: str, **fields: Any) -> None:
    fields.setdefault("title", f"Titel {locale}")
    fields.setdefault("body", f"Inhalt *{locale}*.")
    fields.setdefault("description", f"Kurz {locale}")
    fields.setdefault("state", "published")
    with db.transaction() as session:
        service.create_translation(session, article_id, locale, TranslationDraft(**fields))


def edit_translation(db: Database, article_id: str, locale: str, **fields: Any) -> None:
    with db.transaction() as session:
        service.update_translation(session, article_id, locale, TranslationDraft(**fields))


def row(db: Database, article_id: str) -> Article | None:
    with db.read_session() as session:
        return session.get(Article, article_id)


def must(db: Database, article_id: str) -> Article:
    article = row(db, article_id)
    assert article is not None
    return article


def translation(db: Database, article_id: str, locale: str) -> ArticleTranslation:
    with db.read_session() as session:
        found = session.get(ArticleTranslation, (article_id, locale))
    assert found is not None
    return found


def fetch(intercom: Intercom, intercom_id: str) -> httpx.Response:
    """Intercom's copy, read back over its API."""
    headers = {"Authorization": f"Bearer {intercom.token}", "Intercom-Version": "2.14"}
    return httpx.get(f"{intercom.base_url}/articles/{intercom_id}", headers=headers, timeout=10)


def writes(intercom: Intercom, mark: int = 0) -> list[tuple[str, str, int]]:
    return [
        (h.method, h.path, h.status)
        for h in intercom.traffic.since(mark, "/articles")
        if h.method != "GET"
    ]


def test_a_translated_article_is_created_updated_only_when_changed_and_deleted_on_archive(
    db: Database, intercom: Intercom
) -> None:
    article_id = new_article(db, "Reset your password")
    translate(db, article_id, "de", title="Passwort zurücksetzen", body="Klicken Sie **hier**.")
    translate(db, article_id, "fr", title="Réinitialiser", state="draft")

    with publisher(db, intercom) as pub:
        first = pub.sync()
        assert first.ok and first.intercom_created == 1, first
        [(method, path, status)] = writes(intercom)
        assert (method, path, status) == ("POST", "/articles", 200)
        [sent] = [h.json() for h in intercom.traffic.since(0, "/articles")]
        assert sent["title"] == "Reset your password"
        assert (sent["author_id"], sent["state"]) == (AUTHOR, "published")
        content = sent["translated_content"]
        assert sorted(content) == ["de", "en", "fr"]
        assert content["de"] == {
            "type": "article_content",
            "title": "Passwort zurücksetzen",
            "description": "Kurz de",
            "body": "<p>Klicken Sie <b>hier</b>.</p>",
            "author_id": AUTHOR,
            "state": "published",
        }
        assert content["fr"]["state"] == "draft"  # not published in findesk: a draft there
        assert content["en"]["title"] == "Reset your password"

        stored = must(db, article_id)
        assert stored.intercom_article_id is not None and stored.intercom_error is None
        assert not stored.intercom_pending
        copy = fetch(intercom, stored.intercom_article_id)
        assert copy.status_code == 200
        assert copy.json()["translated_content"]["de"]["title"] == "Passwort zurücksetzen"
        assert translation(db, article_id, "de").intercom_sent_at is not None

        # English still goes to the Content Library as an external page, as before.
        assert intercom.external_ids() == [article_id]

        # Nothing changed: no request at all.
        mark = intercom.traffic.mark()
        again = pub.sync()
        assert again.ok and again.requests == 0 and intercom.traffic.since(mark) == [], again

        # The German text changes: one PUT to the same Intercom article.
        edit_translation(db, article_id, "de", body="Neuer Text.")
        mark = intercom.traffic.mark()
        third = pub.sync()
        assert third.intercom_updated == 1, third
        assert writes(intercom, mark) == [("PUT", f"/articles/{stored.intercom_article_id}", 200)]
        copy = fetch(intercom, stored.intercom_article_id).json()
        assert copy["translated_content"]["de"]["body"] == "<p>Neuer Text.</p>"

        # A deleted translation: Intercom keeps a language an update leaves out, so its
        # article is made again without it.
        translate(db, article_id, "it", title="Reimpostare")
        assert pub.sync().intercom_updated == 1
        with db.transaction() as session:
            service.delete_translation(session, article_id, "it")
        mark = intercom.traffic.mark()
        redone = pub.sync()
        assert redone.ok and redone.intercom_updated == 1, redone
        old_id = stored.intercom_article_id
        stored = must(db, article_id)
        assert writes(intercom, mark) == [
            ("DELETE", f"/articles/{old_id}", 200),
            ("POST", "/articles", 200),
        ]
        assert stored.intercom_article_id is not None
        copy = fetch(intercom, stored.intercom_article_id).json()
        assert "it" not in copy["translated_content"] and "de" in copy["translated_content"]
        assert pub.sync().requests == 0

        # Archived: the Intercom article is deleted (and the external page).
        with db.transaction() as session:
            service.archive(session, article_id)
        mark = intercom.traffic.mark()
        fourth = pub.sync()
        assert (fourth.intercom_deleted, fourth.deleted) == (1, 1), fourth
        assert writes(intercom, mark) == [
            ("DELETE", f"/articles/{stored.intercom_article_id}", 200)
        ]
        assert fetch(intercom, stored.intercom_article_id).status_code == 404
        assert must(db, article_id).intercom_article_id is None


def test_a_deleted_article_stays_a_tombstone_until_its_intercom_article_is_gone(
    db: Database, intercom: Intercom
) -> None:
    article_id = new_article(db, "Hallo", locale="de")  # an older findesk's German article
    with publisher(db, intercom) as pub:
        assert pub.sync().intercom_created == 1
        intercom_id = must(db, article_id).intercom_article_id
        assert intercom_id is not None
        with db.transaction() as session:
            service.delete_article(session, article_id)
        assert must(db, article_id).deleted_at is not None  # kept until Intercom's goes
        intercom.traffic.fail(503, method="DELETE", path="/articles", times=10)
        failed = pub.sync()
        assert failed.intercom_failed == 1 and not failed.ok
        assert must(db, article_id).intercom_error is not None
        intercom.traffic.faults.clear()
        done = pub.sync(due_only=False)
        assert done.intercom_deleted == 1, done
        assert row(db, article_id) is None
        assert fetch(intercom, intercom_id).status_code == 404


def test_a_5xx_is_retried_and_a_lasting_one_is_recorded_and_retried_later(
    db: Database, intercom: Intercom
) -> None:
    article_id = new_article(db, "Billing", state="draft")
    translate(db, article_id, "es", title="Facturación")
    intercom.traffic.fail(503, times=1)
    with publisher(db, intercom) as pub:
        summary = pub.sync()
        assert summary.ok and summary.intercom_created == 1, summary
        assert [s for _m, _p, s in writes(intercom)] == [503, 200]  # retried in the same pass

        other = new_article(db, "Plans", state="draft")
        translate(db, other, "it", title="Piani")
        intercom.traffic.fail(500, times=3)  # every try of this pass
        failed = pub.sync()
        assert failed.intercom_failed == 1 and not failed.ok, failed
        stored = must(db, other)
        assert stored.intercom_error is not None and "500" in stored.intercom_error
        assert stored.intercom_attempts == 1 and stored.intercom_pending
        assert stored.intercom_next_attempt_at is not None  # back-off: not due yet
        assert stored.intercom_article_id is None

        # Not due: a background pass leaves it alone; asked again, it succeeds.
        mark = intercom.traffic.mark()
        assert pub.sync(due_only=True).intercom_created == 0
        assert writes(intercom, mark) == []
        assert pub.sync().intercom_created == 1
        stored = must(db, other)
        assert stored.intercom_error is None and stored.intercom_attempts == 0


def test_a_429_is_waited_out_until_the_reset(db: Database, intercom: Intercom) -> None:
    article_id = new_article(db, "Limits", state="draft")
    translate(db, article_id, "ja", title="制限")
    intercom.traffic.fail(429, times=1, reset_in=0.5)
    with publisher(db, intercom) as pub:
        started = time.monotonic()
        summary = pub.sync()
        waited = time.monotonic() - started
    assert summary.ok and summary.intercom_created == 1 and summary.rate_limited == 1, summary
    assert [s for _m, _p, s in writes(intercom)] == [429, 200]
    assert waited >= 0.4  # it waited for the window rather than failing
    assert must(db, article_id).intercom_error is None


def test_english_only_articles_never_reach_the_articles_api_nor_german_the_content_library(
    db: Database, intercom: Intercom
) -> None:
    english = new_article(db, "Only English")
    german_only = new_article(db, "Nur Deutsch", state="draft")
    translate(db, german_only, "de")
    with publisher(db, intercom) as pub:
        summary = pub.sync()
        assert summary.ok, summary
        assert intercom.traffic.since(0, "/articles") and [
            h.json()["translated_content"].keys() for h in intercom.traffic.since(0, "/articles")
        ] == [{"de", "en"}]
        # Its English version is a draft: so is the top level, Intercom's default language.
        [sent] = [h.json() for h in intercom.traffic.since(0, "/articles")]
        assert (sent["title"], sent["state"]) == ("Nur Deutsch", "draft")
        assert sent["translated_content"]["de"]["state"] == "published"
        # The English article is an external page only; the German one is no page at all.
        assert intercom.external_ids() == [english]
        assert must(db, english).intercom_article_id is None
        assert must(db, english).intercom_error is None
        # An English edit never sends the English-only article there either.
        with db.transaction() as session:
            service.update_article(session, english, ArticleDraft(body="New words."))
        mark = intercom.traffic.mark()
        pub.sync()
        assert intercom.traffic.since(mark, "/articles") == []


def test_without_an_author_id_nothing_is_sent_and_the_error_says_what_to_set(
    db: Database, intercom: Intercom
) -> None:
    article_id = new_article(db, "Hello", state="draft")
    translate(db, article_id, "nl")
    with publisher(db, intercom, intercom_article_author_id=None) as pub:
        summary = pub.sync()
    assert summary.intercom_unconfigured == 1 and summary.requests == 0, summary
    stored = must(db, article_id)
    assert stored.intercom_error == NO_AUTHOR
    assert "FINDESK_INTERCOM_ARTICLE_AUTHOR_ID" in NO_AUTHOR
    assert intercom.traffic.since(0, "/articles") == []


# --- the migration of older non-English articles --------------------------------------------------


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_older_non_english_articles_get_intercoms_locale_and_are_queued(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, intercom: Intercom
) -> None:
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import create_engine, text

    from findesk.migrations import alembic_config

    url = database_url(backend, request, tmp_path)
    command.upgrade(alembic_config(url), "0019")
    now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    stamp = now.replace(tzinfo=None) if url.startswith("sqlite") else now
    engine = create_engine(url)
    rows = (
        ("art_de", "de-DE", "published"),
        ("art_pt", "pt-br", "published"),
        ("art_fr", "fr-CA", "draft"),
        ("art_en", "en-GB", "published"),
        ("art_xx", "tlh", "published"),
    )
    with engine.begin() as connection:
        for article_id, locale, state in rows:
            connection.execute(
                text(
                    "INSERT INTO articles (id, title, slug, body_format, body_source,"
                    " body_html, locale, state, created_at, updated_at, fin_pending,"
                    " fin_attempts) VALUES (:id, :id, :id, 'markdown', 'x', '<p>x</p>',"
                    " :locale, :state, :t, :t, :f, 0)"
                ),
                {"id": article_id, "locale": locale, "state": state, "t": stamp, "f": False},
            )
    engine.dispose()
    upgrade(url)
    db = Database(url)
    try:
        found = {a: (must(db, a).locale, must(db, a).intercom_pending) for a, _, _ in rows}
        assert found == {
            "art_de": ("de", True),
            "art_pt": ("pt-BR", True),
            "art_fr": ("fr", False),  # a draft: nothing to send yet
            "art_en": ("en-GB", False),
            "art_xx": ("tlh", False),  # no such language at Intercom: left as it was
        }
        # The next pass sends the published ones, each in its own language.
        with publisher(db, intercom) as pub:
            summary = pub.sync()
        assert summary.intercom_created == 2, summary
        sent = [h.json()["translated_content"] for h in intercom.traffic.since(0, "/articles")]
        assert sorted(tuple(c) for c in sent) == [("de",), ("pt-BR",)]
    finally:
        db.dispose()


# --- in the background and from the command line -------------------------------------------------


def test_serve_publishes_translations_in_the_background(tmp_path: Path, intercom: Intercom) -> None:
    from support.receiver import eventually
    from support.server import LiveServer

    overrides = {
        "intercom_access_token": intercom.token,
        "intercom_api_url": intercom.base_url,
        "intercom_article_author_id": AUTHOR,
        "kb_retry_seconds": 0.2,
    }
    live = LiveServer(f"sqlite:///{tmp_path / 'live.db'}", overrides).start()
    try:
        article_id = new_article(live.db, "Background", state="draft")
        translate(live.db, article_id, "sv", title="Bakgrund")
        assert eventually(lambda: must(live.db, article_id).intercom_article_id is not None, 15)
        intercom_id = must(live.db, article_id).intercom_article_id
        assert intercom_id is not None
        copy = fetch(intercom, intercom_id).json()
        assert copy["translated_content"]["sv"]["title"] == "Bakgrund"
        edit_translation(live.db, article_id, "sv", state="archived")  # nothing left to show
        assert eventually(lambda: fetch(intercom, intercom_id).status_code == 404, 15)
    finally:
        live.stop()


def test_cli_kb_sync_runs_the_articles_api_phase(tmp_path: Path, intercom: Intercom) -> None:
    import json
    import os
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    try:
        article_id = new_article(db, "Cli", state="draft")
        translate(db, article_id, "pl", title="Polski")
    finally:
        db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env |= {
        "FINDESK_DATA_DIR": str(data_dir),
        "FINDESK_INTERCOM_ACCESS_TOKEN": intercom.token,
        "FINDESK_INTERCOM_API_URL": intercom.base_url,
        "FINDESK_PUBLIC_BASE_URL": BASE,
        "COLUMNS": "200",
    }

    def kb_sync(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "findesk", "kb", "sync", *args],
            env=env | extra,
            capture_output=True,
            text=True,
            timeout=120,
        )

    unconfigured = kb_sync()
    assert unconfigured.returncode == 0, unconfigured.stderr
    assert "1 waiting for FINDESK_INTERCOM_ARTICLE_AUTHOR_ID" in " ".join(
        unconfigured.stdout.split()
    )
    result = kb_sync("--json", FINDESK_INTERCOM_ARTICLE_AUTHOR_ID=str(AUTHOR))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["intercom_created"], summary["intercom_failed"], summary["ok"]) == (1, 0, True)
    intercom.traffic.fail(400, method="PUT", times=5)
    result = kb_sync("--full", FINDESK_INTERCOM_ARTICLE_AUTHOR_ID=str(AUTHOR))
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "Articles API: 0 created, 0 updated, 0 deleted, 0 unchanged, 1 failed" in said
