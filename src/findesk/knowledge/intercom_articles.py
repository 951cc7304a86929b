"""The publisher's second phase: findesk's articles in languages other than English, kept in
step with Intercom's help centre through the Articles API (spec 8).

External pages (the first phase, ``knowledge.publisher``) are English only. Every article that
has a published version in another language (a translation, or its own content when an older
findesk stored it in another language) is also one Intercom article: ``POST /articles`` with
``title``, ``author_id``, ``state`` (those of the English version, Intercom's default language)
and ``translated_content`` keyed by Intercom's locale, each
``{type: "article_content", title, description, body, author_id, state}``; ``PUT
/articles/{id}`` when what would be sent changed (a fingerprint of the whole body is kept, so an
unchanged article costs no request); ``DELETE`` when it is archived, deleted (a tombstone waits
for it) or has no published language other than English left. Every language findesk has of the
article is sent, English included, as Intercom's article needs its default language; those not
published in findesk are sent as drafts, so that an unpublished translation is taken down.

Failures follow the first phase: 429s and transient errors are ridden out by the client, then
recorded (``intercom_error``) and retried with back-off; other 4xx wait for the next change or
an explicit retry. Without ``FINDESK_INTERCOM_ARTICLE_AUTHOR_ID`` nothing is sent: each article
that needs it gets an error saying what to set.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.knowledge import locales, repository
from findesk.knowledge.content_api import ContentApiClient, ContentApiError
from findesk.knowledge.models import Article, ArticleTranslation
from findesk.knowledge.service import RECREATE

log = logging.getLogger("findesk.knowledge.intercom_articles")

MAX_RETRY_SECONDS = 3600.0
MAX_ERROR_LENGTH = 2000
BATCH = 10_000
NO_AUTHOR = (
    "Not sent to Intercom's Articles API: set FINDESK_INTERCOM_ARTICLE_AUTHOR_ID to the id of "
    "the Intercom teammate who authors the help centre's articles"
)


Change = Callable[[Article, list[ArticleTranslation], bool], None]


@dataclass
class Plan:
    """What Intercom should have of an article: ``body`` to send, or nothing (None)."""

    body: dict[str, Any] | None
    digests: dict[str, str] = field(default_factory=dict)  # per locale sent

    @property
    def fingerprint(self) -> str | None:
        return None if self.body is None else fingerprint(self.body)


def fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def needs_intercom(article: Article, translations: list[ArticleTranslation]) -> bool:
    """Published somewhere in a language other than English, and not archived or deleted."""
    if article.deleted_at is not None or article.state == "archived":
        return False
    own = locales.intercom_locale(article.locale)
    if article.state == "published" and own is not None and own != locales.DEFAULT:
        return True
    return any(t.state == "published" and t.locale != locales.DEFAULT for t in translations)


def plan_for(
    article: Article, translations: list[ArticleTranslation], author_id: int | None
) -> Plan:
    if not needs_intercom(article, translations):
        return Plan(None)
    if author_id is None:
        return Plan({})  # wanted, but cannot be sent
    content: dict[str, dict[str, Any]] = {}
    own = locales.intercom_locale(article.locale)
    if own is not None:
        content[own] = _content(article.title, "", article.body_html, article.state, author_id)
    for t in translations:
        content[t.locale] = _content(t.title, t.description, t.body_html, t.state, author_id)
    # The top level is the default language's content (Intercom's workspace default, English):
    # published only when the English version is; an article with no English version gets
    # its own title there, as a draft, since Intercom's article needs a title.
    english = content.get(locales.DEFAULT)
    body = {
        "title": english["title"] if english else article.title,
        "author_id": author_id,
        "state": english["state"] if english else "draft",
        "translated_content": content,
    }
    return Plan(body, {locale: fingerprint(c) for locale, c in content.items()})


def _content(title: str, description: str, body: str, state: str, author_id: int) -> dict[str, Any]:
    return {
        "type": "article_content",
        "title": title,
        "description": description,
        "body": body,
        "author_id": author_id,
        "state": "published" if state == "published" else "draft",
    }


def translation_is_current(translation: ArticleTranslation, author_id: int | None) -> bool:
    """Whether Intercom has this translation's content as it is now."""
    if author_id is None or translation.intercom_hash is None:
        return False
    sent = _content(
        translation.title,
        translation.description,
        translation.body_html,
        translation.state,
        author_id,
    )
    return fingerprint(sent) == translation.intercom_hash


@dataclass
class PhaseCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    unconfigured: int = 0


class ArticlesPhase:
    """One pass over the articles marked ``intercom_pending`` (or, ``full``, every article)."""

    def __init__(self, db: Database, settings: Settings, client: ContentApiClient) -> None:
        self.db = db
        self.settings = settings
        self.client = client
        self.author_id = settings.intercom_article_author_id

    def run(self, *, due_only: bool, full: bool) -> PhaseCounts:
        counts = PhaseCounts()
        seen: set[str] = set()
        while True:
            now = utcnow() if due_only else utcnow() + timedelta(days=365 * 100)
            with self.db.read_session() as session:
                ids = repository.intercom_pending_ids(session, now, BATCH + len(seen))
                if self.author_id is not None and not seen:
                    # Refused for want of the setting, which is now there.
                    ids += repository.intercom_error_ids(session, NO_AUTHOR, BATCH)
                if full and not seen:
                    ids = list(dict.fromkeys(ids + repository.all_ids(session)))
            batch = [i for i in ids if i not in seen]
            if not batch:
                return counts
            seen.update(batch)
            for article_id in batch:
                outcome = self._process(article_id, full)
                if outcome:
                    setattr(counts, outcome, getattr(counts, outcome) + 1)

    def _read(self, article_id: str) -> tuple[Article, list[ArticleTranslation]] | None:
        with self.db.read_session() as session:
            article = repository.get_any(session, article_id)
            if article is None:
                return None
            return article, list(repository.translations(session, article_id))

    def _process(self, article_id: str, full: bool) -> str | None:
        read = self._read(article_id)
        if read is None:
            return None
        article, translations = read
        plan = plan_for(article, translations, self.author_id)
        try:
            if plan.body is None:
                return self._withdraw(article, translations)
            if not plan.body:
                self._save(
                    article, translations, lambda row, _t, current: _unconfigured(row, current)
                )
                return "unconfigured"
            digest = plan.fingerprint
            unchanged = article.intercom_article_id is not None and digest == article.intercom_hash
            if unchanged and not full:
                if article.intercom_pending or article.intercom_error:
                    self._save(
                        article,
                        translations,
                        lambda row, ts, current: _sent(row, ts, current, None),
                    )
                    return "unchanged"
            return self._send(article, translations, plan)
        except ContentApiError as exc:
            self._save_failure(article, translations, exc)
            if exc.unauthorized:
                raise
            return "failed"

    def _send(self, article: Article, translations: list[ArticleTranslation], plan: Plan) -> str:
        assert plan.body is not None
        known = article.intercom_article_id
        answer: dict[str, Any] | None = None
        if known is not None and article.intercom_hash == RECREATE:
            self.client.delete_article(known)  # a language was deleted: made again without it
            answer = self.client.create_article(plan.body)
        elif known is not None:
            try:
                answer = self.client.update_article(known, plan.body)
            except ContentApiError as exc:
                if exc.status != 404:
                    raise
                known = None  # deleted in Intercom meanwhile: made again below
        if answer is None:
            answer = self.client.create_article(plan.body)
        intercom_id = str(answer["id"])
        sent = SentCopy(intercom_id, plan.fingerprint or "", plan.digests)
        self._save(article, translations, lambda row, ts, current: _sent(row, ts, current, sent))
        return "updated" if known is not None else "created"

    def _withdraw(self, article: Article, translations: list[ArticleTranslation]) -> str | None:
        outcome = None
        if article.intercom_article_id is not None:
            self.client.delete_article(article.intercom_article_id)  # already gone: done
            outcome = "deleted"
        if outcome or article.intercom_pending or article.intercom_error or article.deleted_at:

            def withdrawn(row: Article, ts: list[ArticleTranslation], current: bool) -> None:
                row.intercom_article_id = row.intercom_hash = None
                row.intercom_published_at = None
                for t in ts:
                    t.intercom_hash = t.intercom_sent_at = None
                if current:
                    row.intercom_error = row.intercom_error_at = None
                    _settled(row)

            self._save(article, translations, withdrawn)
        return outcome

    def _save_failure(
        self, article: Article, translations: list[ArticleTranslation], exc: ContentApiError
    ) -> None:
        now = utcnow()

        def failed(row: Article, _ts: list[ArticleTranslation], current: bool) -> None:
            row.intercom_error = exc.message[:MAX_ERROR_LENGTH]
            row.intercom_error_at = now
            if not current:
                return
            row.intercom_attempts = (row.intercom_attempts or 0) + 1
            if exc.transient:
                delay = min(
                    MAX_RETRY_SECONDS,
                    self.settings.kb_retry_seconds * 2 ** min(row.intercom_attempts - 1, 32),
                )
                row.intercom_next_attempt_at = now + timedelta(seconds=delay)
                row.intercom_pending = True
            else:
                row.intercom_next_attempt_at = None
                row.intercom_pending = False

        self._save(article, translations, failed)
        log.warning(
            "kb articles api publish failed",
            extra={
                "fields": {
                    "article_id": article.id,
                    "status": exc.status,
                    "error": exc.message,
                    "transient": exc.transient,
                }
            },
        )

    def _save(
        self, snapshot: Article, snapshot_translations: list[ArticleTranslation], change: Change
    ) -> None:
        """Apply ``change(row, translations, current)`` in its own transaction; ``current``
        says what Intercom should have is still what was planned from ``snapshot``."""
        with self.db.transaction() as session:
            row = repository.get_for_update(session, snapshot.id)
            if row is None:
                return
            translations = list(repository.translations(session, row.id))
            before = plan_for(snapshot, snapshot_translations, self.author_id)
            now_plan = plan_for(row, translations, self.author_id)
            current = before.body == now_plan.body and row.deleted_at == snapshot.deleted_at
            change(row, translations, current)
            if (
                current
                and row.deleted_at is not None
                and row.intercom_article_id is None
                and row.fin_page_id is None
            ):
                session.delete(row)


@dataclass
class SentCopy:
    intercom_id: str
    digest: str
    digests: dict[str, str]


def _sent(
    row: Article, translations: list[ArticleTranslation], current: bool, sent: SentCopy | None
) -> None:
    now = utcnow()
    if sent is not None:
        row.intercom_article_id, row.intercom_hash = sent.intercom_id, sent.digest
        row.intercom_published_at = now
        for t in translations:
            if t.locale in sent.digests:
                t.intercom_hash, t.intercom_sent_at = sent.digests[t.locale], now
    row.intercom_error = row.intercom_error_at = None
    if current:
        _settled(row)


def _unconfigured(row: Article, current: bool) -> None:
    row.intercom_error, row.intercom_error_at = NO_AUTHOR, utcnow()
    if current:
        _settled(row)


def _settled(row: Article) -> None:
    row.intercom_pending = False
    row.intercom_attempts = 0
    row.intercom_next_attempt_at = None
