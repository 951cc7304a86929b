"""The publisher against the emulated AI Content API served on loopback: findesk's articles
kept in step with Fin's Content Library (issue 6).

Every request the publisher makes passes through ``Tap`` (``support.tap``), an ASGI middleware in
front of the emulator that records it (method, path, status) and can answer chosen writes with an
error, before the emulator's own rate limit counts them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from emulator.content_api_server import TOKEN, ServedApp
from sqlalchemy import text
from support import aio
from support.receiver import eventually
from support.server import LiveServer, database_url
from support.tap import Tap, Traffic

from findesk.emulator.content_api import create_content_api
from findesk.emulator.content_store import Page, Source
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.knowledge import service
from findesk.knowledge.models import Article, ContentSource
from findesk.knowledge.publisher import (
    ADVISORY_LOCK_KEY,
    NOT_ENGLISH,
    Publisher,
    PublisherLoop,
    fingerprint,
    page_for,
)
from findesk.knowledge.service import ArticleDraft
from findesk.migrations import upgrade

BASE = "https://help.example.com"
PAGES = "/ai/external_pages"

# --- the emulated content library, tapped -----------------------------------------------------


class Library:
    """The emulated AI Content API with its tap."""

    def __init__(self, db_path: Path, rate_limit: int = 100_000, window: float = 10.0) -> None:
        app = create_content_api(f"sqlite:///{db_path}", [TOKEN], rate_limit, window)
        self.traffic = Traffic(default_path=PAGES)
        app.add_middleware(Tap, traffic=self.traffic)
        self.served = ServedApp(app)
        self.base_url = self.served.base_url

    def pages(self) -> list[Page]:
        return self.served.store.list_pages(0, 1_000_000)[0]

    def page_of(self, external_id: str) -> Page | None:
        found = [p for p in self.pages() if p.external_id == external_id]
        assert len(found) <= 1, found
        return found[0] if found else None

    def sources(self) -> list[Source]:
        return self.served.store.list_sources(0, 1000)[0]

    def stop(self) -> None:
        self.served.stop()


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def kb_library(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "content.db")
    yield library
    library.stop()


def kb_settings(db_url: str, library: Library, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "intercom_access_token": TOKEN,
        "intercom_api_url": library.base_url,
        "public_base_url": BASE,
        "kb_retry_seconds": 30,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def kb_db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kb_any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = database_url(request.param, request, tmp_path)
    upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


@pytest.fixture
def kb_publisher(kb_db: Database, kb_library: Library) -> Iterator[Publisher]:
    with Publisher(kb_db, kb_settings(kb_db.url, kb_library), retry_delays=(0.01, 0.02)) as pub:
        yield pub


def new_article(db: Database, title: str, *, state: str = "published", **fields: Any) -> str:
    body = fields.pop("body", f"About **{title}**.")
    with db.transaction() as session:
        draft = ArticleDraft(title=title, body=body, state=state, **fields)
        return service.create_article(session, draft, None).id


def edit(db: Database, article_id: str, **fields: Any) -> None:
    with db.transaction() as session:
        service.update_article(session, article_id, ArticleDraft(**fields))


def act(db: Database, action: Callable[..., Any], article_id: str) -> None:
    with db.transaction() as session:
        action(session, article_id)


def row(db: Database, article_id: str) -> Article | None:
    with db.read_session() as session:
        return session.get(Article, article_id)


def must(db: Database, article_id: str) -> Article:
    article = row(db, article_id)
    assert article is not None
    return article


# --- the main flow (SQLite and PostgreSQL) ----------------------------------------------------


def test_sync_creates_updates_and_deletes_pages_and_sends_nothing_when_unchanged(
    kb_any_db: Database, kb_library: Library
) -> None:
    db, library, traffic = kb_any_db, kb_library, kb_library.traffic
    settings = kb_settings(db.url, library)
    published = [new_article(db, f"Published {n}") for n in range(3)]
    draft = new_article(db, "Only a draft", state="draft")
    own_url = new_article(db, "Hosted elsewhere", url="https://docs.example.com/elsewhere")
    published.append(own_url)
    progress: list[tuple[int, int]] = []

    with Publisher(db, settings) as publisher:
        first = publisher.sync(progress=lambda done, total: progress.append((done, total)))

        # A first sync creates the source and every published page, drafts left out.
        assert first.ok and first.created == 4 and first.failed == 0, first
        [source] = library.sources()
        assert (source.url, source.sync_behavior) == (f"{BASE}/help", "api")
        assert first.source_id == source.id
        pages = {p.external_id: p for p in library.pages()}
        assert sorted(pages) == sorted(published) and draft not in pages
        for article_id, page in pages.items():
            article = must(db, article_id)
            assert page.source_id == source.id
            assert (page.title, page.html, page.locale) == (article.title, article.body_html, "en")
            assert page.ai_agent_availability and page.ai_copilot_availability
            assert page.url == (article.url or f"{BASE}/help/{article.slug}")
            assert article.fin_page_id == str(page.id)
            assert article.fin_hash == fingerprint(page_for(article, source.id, BASE))
            assert article.fin_published_at is not None and article.fin_error is None
            assert not article.fin_pending and article.fin_attempts == 0
        assert pages[own_url].url == "https://docs.example.com/elsewhere"
        assert progress[-1] == (4, 4)
        # One source lookup, its creation and one write per page.
        assert first.requests == traffic.count() == 6

        # A second sync with no change sends nothing.
        mark = traffic.mark()
        second = publisher.sync()
        assert second.ok and second.requests == 0 and traffic.count(mark) == 0, second

        # An edit updates exactly that page (same page, new HTML); the others are untouched.
        edited, *others = published
        before = {p.external_id: p for p in library.pages()}
        edit(db, edited, body="Now with **new** words.")
        mark = traffic.mark()
        third = publisher.sync()
        assert (third.updated, third.created, third.requests) == (1, 0, 1), third
        [hit] = traffic.since(mark)
        assert (hit.method, hit.path, hit.status) == ("POST", PAGES, 200)
        after = {p.external_id: p for p in library.pages()}
        assert after[edited].id == before[edited].id
        assert after[edited].html == must(db, edited).body_html != before[edited].html
        assert "<b>new</b>" in after[edited].html
        assert all(after[o] == before[o] for o in others)
        assert must(db, edited).fin_page_id == str(before[edited].id)

        # An archive deletes the page; the article stays.
        archived = others[0]
        act(db, service.archive, archived)
        mark = traffic.mark()
        fourth = publisher.sync()
        assert fourth.deleted == 1 and fourth.requests == 1, fourth
        assert [(h.method, h.status) for h in traffic.since(mark)] == [("DELETE", 200)]
        assert library.page_of(archived) is None
        archived_row = must(db, archived)
        assert archived_row.fin_page_id is None and not archived_row.fin_pending

        # A deleted article's page is deleted, then its row (a tombstone until then) is gone.
        deleted = others[1]
        act(db, service.delete_article, deleted)
        assert must(db, deleted).deleted_at is not None
        fifth = publisher.sync()
        assert fifth.deleted == 1, fifth
        assert library.page_of(deleted) is None
        assert row(db, deleted) is None

        # Publishing again brings the archived one back as a new page.
        act(db, service.publish, archived)
        assert publisher.sync().created == 1
        assert library.page_of(archived) is not None

    # Another process (a new publisher) reuses the stored source: no lookup, no new source.
    late = new_article(db, "Late arrival")
    mark = traffic.mark()
    with Publisher(db, settings) as again:
        assert again.sync().created == 1
    assert [(h.method, h.path) for h in traffic.since(mark)] == [("POST", PAGES)]
    assert len(library.sources()) == 1 and library.page_of(late) is not None
    assert len(library.pages()) == len({p.external_id for p in library.pages()}) == 4


def test_an_existing_source_with_our_url_is_reused(kb_db: Database, kb_library: Library) -> None:
    existing = kb_library.served.store.create_source(f"{BASE}/help", "api", "active")
    kb_library.served.store.create_source("https://other.example.com", "api", "active")
    article_id = new_article(kb_db, "Reuse me")
    with Publisher(kb_db, kb_settings(kb_db.url, kb_library)) as publisher:
        summary = publisher.sync()
    assert summary.created == 1 and summary.source_id == existing.id
    assert len(kb_library.sources()) == 2
    page = kb_library.page_of(article_id)
    assert page is not None and page.source_id == existing.id


def test_a_source_deleted_in_intercom_is_made_again_and_every_page_put_back(
    kb_db: Database, kb_library: Library, kb_publisher: Publisher
) -> None:
    ids = [new_article(kb_db, f"Survivor {n}") for n in range(3)]
    old = kb_publisher.sync().source_id
    assert old is not None
    store = kb_library.served.store
    other = store.create_source("https://other.example.com", "api", "active")  # ids move on
    store.delete_source(old)
    assert kb_library.pages() == []

    edit(kb_db, ids[0], title="Survivor zero, edited")
    summary = kb_publisher.sync()
    assert summary.ok and summary.source_id not in (None, old, other.id), summary
    [source] = [s for s in kb_library.sources() if s.id != other.id]
    assert source.id == summary.source_id and source.url == f"{BASE}/help"
    pages = kb_library.pages()
    assert sorted(p.external_id for p in pages) == sorted(ids)
    assert all(p.source_id == source.id for p in pages)
    for page in pages:
        assert must(kb_db, page.external_id).fin_page_id == str(page.id)
    assert kb_library.page_of(ids[0]).title == "Survivor zero, edited"  # type: ignore[union-attr]
    mark = kb_library.traffic.mark()
    assert kb_publisher.sync().requests == 0 and kb_library.traffic.count(mark) == 0


def test_full_sync_resends_every_page_and_deletes_stray_ones(
    kb_db: Database, kb_library: Library, kb_publisher: Publisher
) -> None:
    ids = [new_article(kb_db, f"Full {n}") for n in range(2)]
    source_id = kb_publisher.sync().source_id
    assert source_id is not None
    store = kb_library.served.store
    common = {"html": "<p>x</p>", "url": None, "locale": "en"}
    flags = {"ai_agent_availability": True, "ai_copilot_availability": True}
    store.upsert_page(source_id=source_id, external_id="art_gone", title="Old", **common, **flags)
    elsewhere = store.create_source("https://other.example.com", "api", "active")
    store.upsert_page(
        source_id=elsewhere.id, external_id="art_gone", title="Not ours", **common, **flags
    )

    summary = kb_publisher.sync(full=True)
    assert summary.ok and summary.updated == 2 and summary.deleted == 1, summary
    remaining = kb_library.pages()
    assert sorted((p.source_id, p.external_id) for p in remaining) == sorted(
        [(source_id, ids[0]), (source_id, ids[1]), (elsewhere.id, "art_gone")]
    )


# --- the rate limit ---------------------------------------------------------------------------


def test_a_429_storm_is_ridden_out_with_no_page_lost_or_duplicated(
    kb_db: Database, tmp_path: Path
) -> None:
    library = Library(tmp_path / "limited.db", rate_limit=5, window=1.0)
    try:
        ids = [new_article(kb_db, f"Storm {n}") for n in range(40)]
        settings = kb_settings(kb_db.url, library)
        # No pacing: every request goes out as soon as it can, so the limit answers 429s.
        with Publisher(kb_db, settings, pace=False, concurrency=4) as publisher:
            summary = publisher.sync()
        assert summary.ok and summary.created == 40, summary
        assert summary.rate_limited > 0
        assert library.traffic.count(status=429) == summary.rate_limited
        pages = library.pages()
        assert sorted(p.external_id for p in pages) == sorted(ids)  # each exactly once
        for article_id in ids:
            article = must(kb_db, article_id)
            assert article.fin_page_id is not None and article.fin_error is None
        # The emulator's windows were never exceeded.
        accepted = Counter(h.window for h in library.traffic.since() if h.status != 429)
        assert None not in accepted and max(accepted.values()) <= 5
    finally:
        library.stop()


def test_pacing_waits_for_the_window_instead_of_earning_429s(
    kb_db: Database, tmp_path: Path
) -> None:
    library = Library(tmp_path / "paced.db", rate_limit=5, window=1.0)
    try:
        ids = [new_article(kb_db, f"Paced {n}") for n in range(12)]
        with Publisher(kb_db, kb_settings(kb_db.url, library), concurrency=1) as publisher:
            summary = publisher.sync()
        assert summary.ok and summary.created == 12, summary
        assert summary.paced > 0 and summary.rate_limited == 0
        assert sorted(p.external_id for p in library.pages()) == sorted(ids)
    finally:
        library.stop()


# --- failures ---------------------------------------------------------------------------------


def test_transient_errors_are_retried_within_the_pass(
    kb_db: Database, kb_library: Library, kb_publisher: Publisher
) -> None:
    article_id = new_article(kb_db, "Flaky")
    kb_library.traffic.fail(503, times=2)
    summary = kb_publisher.sync()
    assert summary.ok and summary.created == 1, summary
    writes = [h.status for h in kb_library.traffic.since() if h.path == PAGES]
    assert writes == [503, 503, 200]
    article = must(kb_db, article_id)
    assert article.fin_error is None and article.fin_attempts == 0


def test_a_failed_publish_records_its_error_and_is_retried(
    kb_db: Database, kb_library: Library, kb_publisher: Publisher
) -> None:
    article_id = new_article(kb_db, "Outage")
    kb_library.traffic.fail(503)  # every page write, until cleared
    summary = kb_publisher.sync()
    assert summary.failed == 1 and not summary.ok, summary
    article = must(kb_db, article_id)
    assert article.fin_error is not None and "503" in article.fin_error
    assert article.fin_pending and article.fin_attempts == 1 and article.fin_page_id is None
    assert article.fin_error_at is not None and article.fin_next_attempt_at is not None
    assert article.fin_next_attempt_at - article.fin_error_at == timedelta(seconds=30)
    assert kb_library.page_of(article_id) is None

    # A background pass leaves it alone until its retry is due.
    mark = kb_library.traffic.mark()
    assert kb_publisher.sync(due_only=True).articles == 0
    assert kb_library.traffic.count(mark) == 0

    # An explicit sync retries it at once; the delay doubles.
    assert kb_publisher.sync().failed == 1
    article = must(kb_db, article_id)
    assert article.fin_attempts == 2 and article.fin_next_attempt_at is not None
    assert article.fin_error_at is not None
    assert article.fin_next_attempt_at - article.fin_error_at == timedelta(seconds=60)

    kb_library.traffic.clear_faults()
    summary = kb_publisher.sync()
    assert summary.ok and summary.created == 1, summary
    article = must(kb_db, article_id)
    assert article.fin_error is None and article.fin_error_at is None
    assert article.fin_attempts == 0 and article.fin_next_attempt_at is None
    assert not article.fin_pending
    page = kb_library.page_of(article_id)
    assert page is not None and article.fin_page_id == str(page.id)


def test_a_permanent_error_is_recorded_and_not_retried_until_asked(
    kb_db: Database, kb_library: Library, kb_publisher: Publisher
) -> None:
    article_id = new_article(kb_db, "Refused")
    kb_library.traffic.fail(400, times=1)
    summary = kb_publisher.sync()
    assert summary.failed == 1 and summary.requests == 3, summary  # source lookup, create, write
    article = must(kb_db, article_id)
    assert article.fin_error is not None and "HTTP 400" in article.fin_error
    assert not article.fin_pending and article.fin_attempts == 1
    mark = kb_library.traffic.mark()
    assert kb_publisher.sync().requests == 0 and kb_library.traffic.count(mark) == 0

    with kb_db.transaction() as session:
        found = session.get(Article, article_id)
        assert found is not None
        service.request_publish(found)
    assert kb_publisher.sync().created == 1
    assert must(kb_db, article_id).fin_error is None
    assert kb_library.page_of(article_id) is not None


def test_a_refused_token_stops_the_pass_and_leaves_articles_pending(
    kb_db: Database, kb_library: Library
) -> None:
    ids = [new_article(kb_db, f"Locked out {n}") for n in range(5)]
    settings = kb_settings(kb_db.url, kb_library, intercom_access_token="wrong")
    with Publisher(kb_db, settings) as publisher:
        summary = publisher.sync()
    assert summary.error is not None and "access token" in summary.error, summary
    assert summary.requests <= 2
    for article_id in ids:
        article = must(kb_db, article_id)
        assert article.fin_pending and article.fin_error is None


def test_non_english_articles_are_reported_not_publishable_and_not_sent(
    kb_db: Database, kb_library: Library, kb_publisher: Publisher
) -> None:
    french = new_article(kb_db, "Réinitialiser", locale="fr")
    summary = kb_publisher.sync()
    assert summary.not_publishable == 1 and summary.requests == 0, summary
    assert summary.ok
    article = must(kb_db, french)
    assert article.fin_error == NOT_ENGLISH.format(locale="fr")
    assert article.fin_error == (
        "Not publishable as an external page: Fin's external pages are English only (locale fr)"
    )
    assert not article.fin_pending and article.fin_page_id is None
    assert kb_library.pages() == []

    # An English article that turns German loses its page.
    english = new_article(kb_db, "Hello")
    kb_publisher.sync()
    assert kb_library.page_of(english) is not None
    edit(kb_db, english, locale="de")
    summary = kb_publisher.sync()
    assert (summary.deleted, summary.not_publishable) == (1, 1), summary
    assert kb_library.page_of(english) is None
    assert must(kb_db, english).fin_error == NOT_ENGLISH.format(locale="de")

    # Back to English: published again, error cleared.
    edit(kb_db, english, locale="en-GB")
    assert kb_publisher.sync().created == 1
    assert must(kb_db, english).fin_error is None


# --- several publishers -----------------------------------------------------------------------


@pytest.mark.postgres
def test_publishers_of_several_processes_take_turns_on_postgres(
    request: pytest.FixtureRequest, tmp_path: Path, kb_library: Library
) -> None:
    url = database_url("postgres", request, tmp_path)
    upgrade(url)
    first_db, second_db = Database(url), Database(url)
    try:
        ids = [new_article(first_db, f"Shared {n}") for n in range(20)]
        settings = kb_settings(url, kb_library)
        with Publisher(first_db, settings) as one, Publisher(second_db, settings) as two:
            # While one holds the lock, a background pass of the other gives up at once.
            with first_db.engine.connect() as holder:
                holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                assert two.sync(wait=False).skipped
                holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                holder.commit()
            results = []
            threads = [
                threading.Thread(target=lambda p=p: results.append(p.sync())) for p in (one, two)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert sum(r.created for r in results) == 20 and all(r.ok for r in results), results
        assert kb_library.traffic.count(method="POST") == 20 + 1  # the pages and the source
        assert sorted(p.external_id for p in kb_library.pages()) == sorted(ids)
        assert len(kb_library.sources()) == 1
    finally:
        first_db.dispose()
        second_db.dispose()


# --- in the background ------------------------------------------------------------------------


@pytest.fixture
def kb_live(tmp_path: Path, kb_library: Library) -> Iterator[LiveServer]:
    """A findesk server whose in-process publisher writes to ``kb_library``."""
    overrides = {
        "intercom_access_token": TOKEN,
        "intercom_api_url": kb_library.base_url,
        "kb_retry_seconds": 0.2,
    }
    live = LiveServer(f"sqlite:///{tmp_path / 'live.db'}", overrides).start()
    yield live
    live.stop()


def test_serve_publishes_changes_in_the_background(
    kb_live: LiveServer, kb_library: Library
) -> None:
    article_id = new_article(kb_live.db, "Background")
    assert eventually(lambda: kb_library.page_of(article_id) is not None, timeout=15)
    assert eventually(lambda: not must(kb_live.db, article_id).fin_pending, timeout=15)
    page = kb_library.page_of(article_id)
    assert page is not None and page.url == f"{kb_live.base_url}/help/background"
    act(kb_live.db, service.archive, article_id)
    assert eventually(lambda: kb_library.page_of(article_id) is None, timeout=15)


def test_serve_retries_failed_publishes_when_due(kb_live: LiveServer, kb_library: Library) -> None:
    kb_library.traffic.fail(503)
    article_id = new_article(kb_live.db, "Retried later")
    # Nothing wakes the loop after the first failure: later attempts come from the schedule.
    assert eventually(lambda: must(kb_live.db, article_id).fin_attempts >= 2, timeout=20)
    article = must(kb_live.db, article_id)
    assert article.fin_pending and article.fin_error and "503" in article.fin_error
    kb_library.traffic.clear_faults()
    assert eventually(lambda: kb_library.page_of(article_id) is not None, timeout=20)
    assert eventually(lambda: must(kb_live.db, article_id).fin_error is None, timeout=20)
    assert must(kb_live.db, article_id).fin_attempts == 0


def test_the_loop_stops_promptly_during_a_rate_limit_wait(kb_db: Database, tmp_path: Path) -> None:
    library = Library(tmp_path / "slow.db", rate_limit=1, window=3600.0)
    try:
        for n in range(3):
            new_article(kb_db, f"Waiting {n}")
        settings = kb_settings(kb_db.url, library)
        publisher = Publisher(kb_db, settings, concurrency=1)
        loop = PublisherLoop(kb_db, settings, publisher=publisher)

        async def scenario() -> float:
            task = asyncio.create_task(loop.run())
            # Its first request uses the hour's allowance; then it waits (up to a minute).
            deadline = time.monotonic() + 10
            while publisher.client.stats.paced == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert publisher.client.stats.paced == 1 and library.traffic.count() == 1
            started = time.monotonic()
            loop.stop()
            await asyncio.wait_for(task, timeout=10)
            return time.monotonic() - started

        assert aio.run(scenario) < 5
    finally:
        library.stop()


# --- the command line -------------------------------------------------------------------------


def kb_cli(data_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env["FINDESK_DATA_DIR"] = str(data_dir)
    env["COLUMNS"] = "200"
    env.update({f"FINDESK_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "findesk", "kb", "sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_kb_sync(tmp_path: Path, kb_library: Library) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    try:
        ids = [new_article(db, f"Cli {n}") for n in range(3)]
    finally:
        db.dispose()

    missing = kb_cli(data_dir)
    assert missing.returncode == 2
    assert "FINDESK_INTERCOM_ACCESS_TOKEN" in missing.stderr

    configured = {
        "intercom_access_token": TOKEN,
        "intercom_api_url": kb_library.base_url,
        "public_base_url": BASE,
    }
    result = kb_cli(data_dir, "--json", **configured)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["created"], summary["failed"], summary["ok"]) == (3, 0, True)
    assert sorted(p.external_id for p in kb_library.pages()) == sorted(ids)

    result = kb_cli(data_dir, "--full", **configured)
    assert result.returncode == 0, result.stderr
    assert "0 created, 3 updated" in result.stdout

    kb_library.traffic.fail(400)
    result = kb_cli(data_dir, "--full", **configured)
    assert result.returncode == 1
    assert "3 failed" in result.stderr


# --- a new public address (issue 11): Fin must not cite dead links ---------------------------

NEW_BASE = "https://support.example.org"


def test_a_new_public_base_url_republishes_every_page_and_moves_the_source(
    kb_db: Database, kb_library: Library
) -> None:
    """Restarted with another FINDESK_PUBLIC_BASE_URL (or port): no article changed, yet each
    page on findesk's help centre gets its new URL, in the same pages of the same source."""
    ids = [new_article(kb_db, f"Moved {n}") for n in range(2)]
    own = new_article(kb_db, "Hosted elsewhere", url="https://docs.example.com/elsewhere")
    with Publisher(kb_db, kb_settings(kb_db.url, kb_library)) as publisher:
        assert publisher.sync().created == 3
    before = {p.external_id: p for p in kb_library.pages()}
    [source] = kb_library.sources()

    settings = kb_settings(kb_db.url, kb_library, public_base_url=NEW_BASE)
    with Publisher(kb_db, settings) as publisher:
        # As the background loop runs it: only what is pending and due.
        summary = publisher.sync(due_only=True, wait=False)
        assert summary.ok and (summary.updated, summary.created) == (2, 0), summary
        assert summary.unchanged == 1  # its URL is its own: nothing to resend
        assert summary.source_id == source.id
        [moved] = kb_library.sources()
        assert (moved.id, moved.url, moved.sync_behavior) == (source.id, f"{NEW_BASE}/help", "api")
        after = {p.external_id: p for p in kb_library.pages()}
        assert sorted(after) == sorted([*ids, own])
        for article_id in ids:
            article = must(kb_db, article_id)
            assert after[article_id].id == before[article_id].id
            assert after[article_id].url == f"{NEW_BASE}/help/{article.slug}"
            assert article.fin_hash == fingerprint(page_for(article, source.id, NEW_BASE))
            assert not article.fin_pending
        assert after[own] == before[own]
        mark = kb_library.traffic.mark()
        assert publisher.sync().requests == 0 and kb_library.traffic.count(mark) == 0


def test_the_fingerprint_covers_the_page_url(kb_db: Database) -> None:
    article_id = new_article(kb_db, "Fingerprinted")
    article = must(kb_db, article_id)
    assert fingerprint(page_for(article, 1, BASE)) != fingerprint(page_for(article, 1, NEW_BASE))


def test_a_new_api_address_of_the_same_library_moves_the_source_not_duplicates_it(
    kb_db: Database, kb_library: Library
) -> None:
    """The demo restarted with both ports changed: the content library is the same one, seen
    at another address; findesk's source there is moved, not left behind with dead links."""
    ids = [new_article(kb_db, f"Both moved {n}") for n in range(2)]
    with Publisher(kb_db, kb_settings(kb_db.url, kb_library)) as publisher:
        assert publisher.sync().created == 2
    [source] = kb_library.sources()
    elsewhere = kb_library.base_url.replace("127.0.0.1", "localhost")
    settings = kb_settings(
        kb_db.url, kb_library, public_base_url=NEW_BASE, intercom_api_url=elsewhere
    )
    with Publisher(kb_db, settings) as publisher:
        summary = publisher.sync(due_only=True, wait=False)
    assert summary.ok and summary.updated == 2 and summary.created == 0, summary
    [moved] = kb_library.sources()
    assert (moved.id, moved.url) == (source.id, f"{NEW_BASE}/help")
    assert sorted(p.url or "" for p in kb_library.pages()) == sorted(
        f"{NEW_BASE}/help/{must(kb_db, i).slug}" for i in ids
    )


def test_a_source_left_at_an_old_address_is_deleted_and_its_pages_put_in_ours(
    kb_db: Database, kb_library: Library
) -> None:
    """What an earlier findesk left after a restart on another port: a second source made for
    the new URL, while the old one kept every page at its dead URL."""
    ids = [new_article(kb_db, f"Left behind {n}") for n in range(2)]
    with Publisher(kb_db, kb_settings(kb_db.url, kb_library)) as publisher:
        assert publisher.sync().created == 2
    [old] = kb_library.sources()
    newer = kb_library.served.store.create_source(f"{NEW_BASE}/help", "api", "active")
    with kb_db.transaction() as session:
        session.add(ContentSource(api_base=kb_library.base_url, url=newer.url, source_id=newer.id))

    settings = kb_settings(kb_db.url, kb_library, public_base_url=NEW_BASE)
    with Publisher(kb_db, settings) as publisher:
        summary = publisher.sync(due_only=True, wait=False)
    assert summary.ok and summary.source_id == newer.id, summary
    assert [s.id for s in kb_library.sources()] == [newer.id]
    assert kb_library.served.store.get_source(old.id) is None
    pages = kb_library.pages()
    assert sorted(p.external_id for p in pages) == sorted(ids)
    assert all(p.source_id == newer.id and (p.url or "").startswith(NEW_BASE) for p in pages)
    for page in pages:
        assert must(kb_db, page.external_id).fin_page_id == str(page.id)


def test_serve_restarted_on_another_port_republishes_with_the_new_urls(
    tmp_path: Path, kb_library: Library
) -> None:
    url = f"sqlite:///{tmp_path / 'restarted.db'}"
    overrides = {"intercom_access_token": TOKEN, "intercom_api_url": kb_library.base_url}
    first = LiveServer(url, overrides).start()
    try:
        article_id = new_article(first.db, "Restarted")
        assert eventually(lambda: kb_library.page_of(article_id) is not None, timeout=15)
    finally:
        first.stop()
    second = LiveServer(url, overrides).start()
    try:
        assert second.port != first.port
        wanted = f"{second.base_url}/help/restarted"
        page_url = lambda: getattr(kb_library.page_of(article_id), "url", None)  # noqa: E731
        assert eventually(lambda: page_url() == wanted, timeout=15), page_url()
        assert [s.url for s in kb_library.sources()] == [f"{second.base_url}/help"]
    finally:
        second.stop()
