"""Keeping Fin's Content Library in step with findesk's articles (spec 8, AI Content API).

Each published English article is an external page of one content import source (created once
with ``sync_behavior: "api"`` and the URL ``{base_url}/help``, or found and reused), keyed by the
article's id as ``external_id``: writing it is an upsert, so a retry or a race never makes a
duplicate. A page is deleted when its article is archived, unpublished or deleted (a deleted
article stays as a tombstone until then). What was last sent is remembered as a fingerprint (of
the whole page, its URL included), so an unchanged article costs no request. Non-English
articles are not sent (Fin's external pages are English only): they get an error saying so.

When the public base URL changes (``FINDESK_PUBLIC_BASE_URL``, or the host and port it defaults
to), the first pass moves the source to the new ``{base_url}/help`` (or, if Intercom refuses,
deletes it and makes another) and sends every page again with its new URL, so that Fin never
cites a dead link; a source an older findesk left at an old URL is deleted.

A pass looks at the articles marked ``fin_pending`` (``--full``: at all of them, resending every
page and deleting pages of our source that match no publishable article). HTTP calls happen
outside database transactions; each article's result is written in its own short transaction,
and an article edited meanwhile stays pending for the next pass. One pass runs at a time: a
PostgreSQL advisory lock across processes, a lock per database within one.

Failures: 429 is waited out by the client; transient errors are retried a few times there, then
recorded on the article (``fin_error``, ``fin_attempts``) with a retry after
``kb_retry_seconds * 2^(attempts-1)`` (at most an hour); other 4xx are recorded and not retried
until the article changes or is asked again (``service.request_publish``). A refused token stops
the pass (every request would fail alike).

``PublisherLoop`` runs passes in the background (``findesk serve``, ``findesk worker``), woken
by ``service.publish_requested`` after commits and otherwise every few seconds for due retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import httpx

from findesk.kit.commit_signal import PassLoop
from findesk.kit.db import Database, insert_once
from findesk.kit.exclusive import exclusive
from findesk.kit.settings import Settings
from findesk.kit.timeutil import as_utc, utcnow
from findesk.knowledge import repository
from findesk.knowledge.content_api import ApiStats, ContentApiError, IntercomJob, Stopped
from findesk.knowledge.intercom_articles import ArticlesPhase
from findesk.knowledge.models import Article, ContentSource
from findesk.knowledge.service import is_english, is_publishable, public_url, publish_requested

log = logging.getLogger("findesk.knowledge.publisher")

ADVISORY_LOCK_KEY = 0x66696E6B62  # b"finkb": one publisher pass per database at a time
MAX_RETRY_SECONDS = 3600.0
MAX_ERROR_LENGTH = 2000
PENDING_BATCH = 10_000
MAX_SOURCE_REPLACEMENTS = 2  # per pass; beyond, something keeps deleting the source
FAR_FUTURE = timedelta(days=365 * 100)
NOT_ENGLISH = (
    "Not publishable as an external page: Fin's external pages are English only (locale {locale})"
)

Progress = Callable[[int, int], None]  # (articles done, articles to do)


def source_url(settings: Settings) -> str:
    """The root URL of findesk's content import source: its help centre."""
    return f"{settings.base_url}/help"


def page_for(article: Article, source_id: int, base_url: str) -> dict[str, Any]:
    """The external page body for an article; both availability flags are sent every time,
    since Intercom does not reset them on update."""
    return {
        "title": article.title,
        "html": article.body_html,
        "url": public_url(article, base_url),
        "locale": "en",
        "source_id": source_id,
        "external_id": article.id,
        "ai_agent_availability": True,
        "ai_copilot_availability": True,
    }


def fingerprint(page: dict[str, Any]) -> str:
    canonical = json.dumps(page, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def retry_delay(settings: Settings, attempts: int) -> float:
    return float(min(MAX_RETRY_SECONDS, settings.kb_retry_seconds * 2 ** min(attempts - 1, 32)))


@dataclass
class SyncSummary:
    full: bool = False
    articles: int = 0  # looked at
    created: int = 0
    updated: int = 0
    deleted: int = 0  # pages deleted (archived, deleted, non-English, or stray with --full)
    unchanged: int = 0
    failed: int = 0
    not_publishable: int = 0
    requests: int = 0
    rate_limited: int = 0  # 429 responses met (each one waited out)
    paced: int = 0  # waits for a used-up window that avoided a 429
    source_id: int | None = None
    # The Articles API phase (knowledge.intercom_articles): languages other than English.
    intercom_created: int = 0
    intercom_updated: int = 0
    intercom_deleted: int = 0
    intercom_unchanged: int = 0
    intercom_failed: int = 0
    intercom_unconfigured: int = 0  # wanted there, but FINDESK_INTERCOM_ARTICLE_AUTHOR_ID unset
    seconds: float = 0.0
    error: str | None = None  # why the pass stopped early
    skipped: bool = False  # another publisher was running (background passes only)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.intercom_failed == 0 and self.error is None

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.updated
            or self.deleted
            or self.failed
            or self.error
            or self.intercom_created
            or self.intercom_updated
            or self.intercom_deleted
            or self.intercom_failed
        )

    @property
    def intercom_touched(self) -> bool:
        return bool(
            self.intercom_created
            or self.intercom_updated
            or self.intercom_deleted
            or self.intercom_unchanged
            or self.intercom_failed
            or self.intercom_unconfigured
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> str:
        line = (
            f"{self.created} created, {self.updated} updated, {self.deleted} deleted, "
            f"{self.unchanged} unchanged, {self.failed} failed, "
            f"{self.not_publishable} not publishable; {self.requests} requests, "
            f"{self.rate_limited} rate-limited (429) in {self.seconds:.1f} s"
        )
        if self.intercom_touched:
            line += (
                f"; Articles API: {self.intercom_created} created, {self.intercom_updated} "
                f"updated, {self.intercom_deleted} deleted, {self.intercom_unchanged} unchanged, "
                f"{self.intercom_failed} failed, {self.intercom_unconfigured} waiting for "
                "FINDESK_INTERCOM_ARTICLE_AUTHOR_ID"
            )
        return line if self.error is None else f"{line}; stopped: {self.error}"


class _PassAborted(Exception):
    """Nothing more can be done in this pass (the token is refused, the source cannot be had)."""


class Publisher(IntercomJob):
    """Runs publishing passes; one per process is enough (thread-safe, one pass at a time)."""

    purpose = "publishing to Fin"

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        concurrency: int = 4,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
        pace: bool = True,
        timeout: float = 15.0,
        max_rate_limit_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            db,
            settings,
            retry_delays=retry_delays,
            pace=pace,
            timeout=timeout,
            max_rate_limit_wait=max_rate_limit_wait,
            transport=transport,
        )
        self.api_base = settings.intercom_api_base
        self.source_url = source_url(settings)
        self.concurrency = max(1, concurrency)
        self._source_lock = threading.Lock()
        self._source_id: int | None = None
        self._source_failure: Exception | None = None
        self._replacements = 0
        self._source_replaced = threading.Event()

    # --- a pass -----------------------------------------------------------------------------

    def sync(
        self,
        full: bool = False,
        progress: Progress | None = None,
        *,
        due_only: bool = False,
        wait: bool = True,
    ) -> SyncSummary:
        """One pass: the pending articles (``due_only``: those whose retry time has come), or
        with ``full`` every article, then the stray pages. ``wait=False`` gives up at once
        (``skipped``) when another pass runs."""
        summary = SyncSummary(full=full)
        started = time.perf_counter()
        before = self._stats()
        with exclusive(self.db, ADVISORY_LOCK_KEY, wait=wait, stop=self._stop) as acquired:
            if not acquired:
                summary.skipped = True
                return summary
            try:
                self._begin_pass()
                counter = _Counter(summary, progress)
                done: set[str] = set()
                if full:
                    done.update(everything := self._all_ids())
                    self._run(everything, full=True, counter=counter)
                # Then what is pending and was not just looked at: new articles, or every page
                # again when the source had to be made anew. (Edits made meanwhile wake the
                # next pass.)
                self._run_pending(due_only=due_only, full=full, counter=counter, seen=done)
                if full:
                    self._reconcile(summary)
            except Stopped:
                summary.error = "stopped"
            except _PassAborted as exc:
                summary.error = str(exc)
            except ContentApiError as exc:
                summary.error = exc.message
            summary.source_id = self._source_id
            # The second phase: the same pass, lock and client (spec 8, Articles API); it runs
            # unless the token is refused or the pass was stopped (the content import source
            # failing does not concern it).
            if summary.error is None or not (summary.error == "stopped" or self._refused()):
                try:
                    self._run_articles_phase(summary, due_only=due_only, full=full)
                except Stopped:
                    summary.error = "stopped"
                except ContentApiError as exc:
                    summary.error = summary.error or exc.message
        after = self._stats()
        summary.requests = after.requests - before.requests
        summary.rate_limited = after.rate_limited - before.rate_limited
        summary.paced = after.paced - before.paced
        summary.seconds = time.perf_counter() - started
        if summary.changed or summary.not_publishable:
            log.log(
                logging.WARNING if not summary.ok else logging.INFO,
                "kb sync pass",
                extra={"fields": summary.to_dict()},
            )
        return summary

    def seconds_until_due(self, ceiling: float) -> float:
        """How long until a failed article's retry is due (at most ``ceiling``)."""
        with self.db.read_session() as session:
            dues = [repository.earliest_retry(session), repository.earliest_intercom_retry(session)]
        for due in dues:
            if due is not None:
                ceiling = min(ceiling, max(0.0, (as_utc(due) - utcnow()).total_seconds()))
        return ceiling

    def _refused(self) -> bool:
        failure = self._source_failure
        return isinstance(failure, ContentApiError) and failure.unauthorized

    def _run_articles_phase(self, summary: SyncSummary, *, due_only: bool, full: bool) -> None:
        counts = ArticlesPhase(self.db, self.settings, self.client).run(
            due_only=due_only, full=full
        )
        summary.intercom_created += counts.created
        summary.intercom_updated += counts.updated
        summary.intercom_deleted += counts.deleted
        summary.intercom_unchanged += counts.unchanged
        summary.intercom_failed += counts.failed
        summary.intercom_unconfigured += counts.unconfigured

    def _stats(self) -> ApiStats:
        stats = self.client.stats
        return ApiStats(stats.requests, stats.rate_limited, stats.paced, stats.waited_seconds)

    def _begin_pass(self) -> None:
        self._replacements = 0
        self._source_failure = None
        self._source_replaced.clear()
        with self.db.read_session() as session:
            known = repository.sources(session)
        mine = [s for s in known if s.api_base == self.api_base]
        current = next((s.source_id for s in mine if s.url == self.source_url), None)
        self._source_id = current
        # The public base URL (or a port) or the API's address changed since a source was
        # made: every page cites dead links until it is sent again. Settle the source and
        # requeue the pages now, not when each article next changes.
        if any(s.url != self.source_url for s in mine) or (current is None and known):
            self._source_id = None
            self._source()

    def _all_ids(self) -> list[str]:
        with self.db.read_session() as session:
            return repository.all_ids(session)

    def _run_pending(
        self, *, due_only: bool, full: bool, counter: _Counter, seen: set[str]
    ) -> None:
        while True:
            if self._source_replaced.is_set():  # every page went with the old source
                self._source_replaced.clear()
                seen.clear()
            now = utcnow() if due_only else utcnow() + FAR_FUTURE
            with self.db.read_session() as session:
                ids = repository.pending_ids(session, now, PENDING_BATCH + len(seen))
                ids += repository.unreported_non_english_ids(session, PENDING_BATCH + len(seen))
            batch = list(dict.fromkeys(i for i in ids if i not in seen))
            if not batch:
                return
            seen.update(batch)
            self._run(batch, full=full, counter=counter)

    def _run(self, ids: list[str], *, full: bool, counter: _Counter) -> None:
        counter.expect(len(ids))
        if self.concurrency == 1:
            for article_id in ids:
                counter.add(self._process(article_id, full))
            return
        todo = iter(ids)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="findesk-kb") as pool:
            running: set[Future[tuple[str, ...]]] = set()
            try:
                while True:
                    while len(running) < self.concurrency * 2:
                        next_id = next(todo, None)
                        if next_id is None:
                            break
                        running.add(pool.submit(self._process, next_id, full))
                    if not running:
                        return
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        counter.add(future.result())
            except BaseException as exc:
                if not isinstance(exc, Exception):  # Ctrl-C: end the waits of the others too
                    self._stop.set()
                for future in running:
                    future.cancel()
                raise

    # --- one article ------------------------------------------------------------------------

    def _process(self, article_id: str, full: bool) -> tuple[str, ...]:
        """Bring one article's page in line; returns the summary counters to bump."""
        with self.db.read_session() as session:
            article = repository.get_any(session, article_id)
        if article is None:
            return ()
        try:
            if is_publishable(article):
                return self._publish(article, full)
            return self._withdraw(article)
        except ContentApiError as exc:
            if exc.unauthorized:
                raise _PassAborted(f"Intercom refused the access token ({exc.message})") from exc
            self._save_failure(article, exc)
            return ("failed",)

    def _publish(self, article: Article, full: bool) -> tuple[str, ...]:
        source_id = self._source()
        page = page_for(article, source_id, self.settings.base_url)
        digest = fingerprint(page)
        if article.fin_page_id is not None and article.fin_hash == digest and not full:
            if article.fin_pending or article.fin_error:
                self._save(article, lambda row, current: _mark_unchanged(row, current))
            return ("unchanged",)
        try:
            answer = self.client.upsert_page(page)
        except ContentApiError as exc:
            if exc.status != 404 or self.client.get_source(source_id) is not None:
                raise
            # The source is gone (deleted in Intercom): make a new one, put every page back.
            source_id = self._replace_source(source_id)
            page = page_for(article, source_id, self.settings.base_url)
            digest = fingerprint(page)
            answer = self.client.upsert_page(page)
        page_id = str(answer["id"])
        now = utcnow()

        def saved(row: Article, current: bool) -> None:
            if source_id != self._source_id:  # replaced meanwhile: that page went with it
                row.fin_page_id = row.fin_hash = None
                row.fin_pending = True
                return
            row.fin_page_id, row.fin_hash, row.fin_published_at = page_id, digest, now
            row.fin_error = row.fin_error_at = None
            if current:
                _settled(row)

        self._save(article, saved)
        return ("created",) if article.fin_page_id is None else ("updated",)

    def _withdraw(self, article: Article) -> tuple[str, ...]:
        counts: tuple[str, ...] = ()
        if article.fin_page_id is not None:
            self.client.delete_page(article.fin_page_id)  # already gone counts as done
            counts = ("deleted",)
        live = article.state == "published" and article.deleted_at is None
        if live and not is_english(article):
            message = NOT_ENGLISH.format(locale=article.locale)
            reported_at = article.fin_error_at
            stale = (
                article.fin_error != message or not reported_at or reported_at < article.updated_at
            )
            if article.fin_pending or counts or stale:
                now = utcnow()

                def refused(row: Article, current: bool) -> None:
                    row.fin_page_id = row.fin_hash = None
                    # Edited meanwhile: no time, so that the next pass reports it afresh.
                    row.fin_error, row.fin_error_at = message, now if current else None
                    if current:
                        _settled(row)

                self._save(article, refused)
            return (*counts, "not_publishable")
        if article.fin_pending or counts or article.deleted_at or article.fin_error:

            def withdrawn(row: Article, current: bool) -> None:
                row.fin_page_id = row.fin_hash = None
                if current:
                    row.fin_error = row.fin_error_at = None
                    _settled(row)

            self._save(article, withdrawn, drop_tombstone=True)
        return counts

    def _save_failure(self, article: Article, exc: ContentApiError) -> None:
        now = utcnow()
        outcome: dict[str, Any] = {}

        def failed(row: Article, current: bool) -> None:
            row.fin_error, row.fin_error_at = exc.message[:MAX_ERROR_LENGTH], now
            if not current:
                return  # edited meanwhile: it stays pending with the schedule the edit set
            row.fin_attempts = (row.fin_attempts or 0) + 1
            if exc.transient:
                delay = retry_delay(self.settings, row.fin_attempts)
                row.fin_next_attempt_at = now + timedelta(seconds=delay)
                row.fin_pending = True
            else:  # not retried until the article changes or is asked again
                row.fin_next_attempt_at = None
                row.fin_pending = False
            outcome["attempts"] = row.fin_attempts
            outcome["next_attempt_at"] = row.fin_next_attempt_at

        self._save(article, failed)
        log.warning(
            "kb publish failed",
            extra={
                "fields": {
                    "article_id": article.id,
                    "status": exc.status,
                    "error": exc.message,
                    "transient": exc.transient,
                    **outcome,
                }
            },
        )

    def _save(
        self,
        snapshot: Article,
        change: Callable[[Article, bool], object],
        *,
        drop_tombstone: bool = False,
    ) -> None:
        """Apply ``change(row, current)`` to the article in its own transaction; ``current``
        says it has not been edited since ``snapshot`` was read."""
        with self.db.transaction() as session:
            row = repository.get_for_update(session, snapshot.id)
            if row is None:
                return
            current = row.updated_at == snapshot.updated_at
            change(row, current)
            # A tombstone also waits for its Intercom article (the Articles API phase).
            if (
                drop_tombstone
                and current
                and row.deleted_at is not None
                and row.intercom_article_id is None
            ):
                session.delete(row)

    # --- the content import source ----------------------------------------------------------

    def _source(self) -> int:
        with self._source_lock:
            if self._source_failure is not None:  # once per pass, not once per article
                raise self._source_failure
            if self._source_id is None:
                try:
                    self._source_id = self._find_or_create_source()
                except ContentApiError as exc:
                    if exc.unauthorized:
                        self._source_failure = exc
                        raise
                    message = f"could not get the content import source: {exc.message}"
                    self._source_failure = _PassAborted(message)
                    raise self._source_failure from exc
            return self._source_id

    def _find_or_create_source(self) -> int:
        """Our source at ``source_url``: the stored one; else the one we had at an older URL,
        moved to this one; else one with this URL (or, seen at another API address, one of
        our older URLs) found in the library; else a new one. A source left at an older URL is
        deleted (its pages cite dead links), and every page is queued to be sent again."""
        with self.db.read_session() as session:
            known = repository.sources(session)  # newest first
        mine = [s for s in known if s.api_base == self.api_base]
        stale = [s.source_id for s in mine if s.url != self.source_url]
        source_id = next((s.source_id for s in mine if s.url == self.source_url), None)
        for candidate in stale:
            if source_id is not None:
                break
            if self._move_source(candidate):
                source_id = candidate
        if source_id is None:
            source_id = self._find_in_library({s.url for s in known})
        for old in dict.fromkeys(stale):
            if old != source_id:
                self._retire_source(old)
        with self.db.transaction() as session:
            repository.drop_sources(session, self.api_base, keep_url=self.source_url)
            stored, _created = insert_once(
                session,
                ContentSource(api_base=self.api_base, url=self.source_url, source_id=source_id),
                lambda: repository.get_source(session, self.api_base, self.source_url),
            )
            if known:  # pages were written before: their URL or source may have changed
                repository.requeue_pages(session)
            return stored.source_id

    def _find_in_library(self, our_urls: set[str]) -> int:
        api_sources = [s for s in self.client.list_sources() if s.get("sync_behavior") == "api"]
        found = next((s for s in api_sources if s.get("url") == self.source_url), None)
        if found is None:
            ours = next((s for s in api_sources if s.get("url") in our_urls), None)
            if ours is not None and self._move_source(int(ours["id"])):
                found = ours
        if found is None:
            found = self.client.create_source(self.source_url, "api")
            log.info(
                "kb content import source created",
                extra={"fields": {"source_id": found.get("id"), "url": self.source_url}},
            )
        return int(found["id"])

    def _move_source(self, source_id: int) -> bool:
        """Give our source the current URL; False when it is gone or may not be changed."""
        try:
            self.client.update_source(source_id, self.source_url, "api")
        except ContentApiError as exc:
            if exc.unauthorized or exc.transient:
                raise
            log.warning(
                "kb content import source not moved",
                extra={"fields": {"source_id": source_id, "error": exc.message}},
            )
            return False
        log.info(
            "kb content import source moved to a new URL",
            extra={"fields": {"source_id": source_id, "url": self.source_url}},
        )
        return True

    def _retire_source(self, source_id: int) -> None:
        try:
            self.client.delete_source(source_id)  # already gone counts as done
        except ContentApiError as exc:
            if exc.unauthorized or exc.transient:
                raise
            log.warning(
                "kb old content import source not deleted",
                extra={"fields": {"source_id": source_id, "error": exc.message}},
            )
            return
        log.info("kb old content import source deleted", extra={"fields": {"source_id": source_id}})

    def _replace_source(self, lost: int) -> int:
        """The source ``lost`` answered 404: forget it and every page it had, get another."""
        with self._source_lock:
            with self.db.transaction() as session:
                row = repository.get_source(session, self.api_base, self.source_url)
                if row is not None and row.source_id != lost:
                    self._source_id = row.source_id  # another pass replaced it already
                    return row.source_id
                if self._source_id != lost and self._source_id is not None:
                    return self._source_id
                self._replacements += 1
                if self._replacements > MAX_SOURCE_REPLACEMENTS:
                    raise _PassAborted("the content import source keeps disappearing")
                if row is not None:
                    session.delete(row)
                # Its pages went with it: every article that had one must be written again.
                repository.forget_pages(session)
            log.warning(
                "kb content import source gone; making a new one",
                extra={"fields": {"source_id": lost}},
            )
            self._source_id = None
            self._source_replaced.set()
        return self._source()

    # --- --full: pages that match no publishable article ------------------------------------

    def _reconcile(self, summary: SyncSummary) -> None:
        source_id = self._source_id
        if source_id is None:
            return  # no source yet: no page of ours anywhere
        with self.db.read_session() as session:
            keep = {row.id for row in repository.published(session) if is_publishable(row)}
        stray = [
            str(page["id"])
            for page in self.client.list_pages()
            if str(page.get("source_id")) == str(source_id) and page.get("external_id") not in keep
        ]
        for page_id in stray:
            if self.client.delete_page(page_id):
                summary.deleted += 1
        if stray:
            log.info("kb stray pages deleted", extra={"fields": {"count": len(stray)}})


def _settled(row: Article) -> None:
    row.fin_pending = False
    row.fin_attempts = 0
    row.fin_next_attempt_at = None


def _mark_unchanged(row: Article, current: bool) -> None:
    if current:
        row.fin_error = row.fin_error_at = None
        _settled(row)


class _Counter:
    """Tallies outcomes into the summary and reports progress (from any thread)."""

    def __init__(self, summary: SyncSummary, progress: Progress | None) -> None:
        self.summary = summary
        self.progress = progress
        self.total = 0
        self._lock = threading.Lock()

    def expect(self, count: int) -> None:
        with self._lock:
            self.total += count
            done, total = self.summary.articles, self.total
        if self.progress is not None:
            self.progress(done, total)

    def add(self, counts: tuple[str, ...]) -> None:
        with self._lock:
            self.summary.articles += 1
            for name in counts:
                setattr(self.summary, name, getattr(self.summary, name) + 1)
            done, total = self.summary.articles, self.total
        if self.progress is not None:
            self.progress(done, total)


class PublisherLoop(PassLoop):
    """Publishes pending articles in the background until ``stop()``: at once when woken by a
    commit that marked articles, else every ``poll_seconds`` for retries that became due."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        poll_seconds: float = 5.0,
        publisher: Publisher | None = None,
    ) -> None:
        self.publisher = publisher or Publisher(db, settings)
        super().__init__(
            self.publisher,
            publish_requested,
            name="kb publisher",
            poll_seconds=poll_seconds,
            retry_seconds=settings.kb_retry_seconds,
        )
