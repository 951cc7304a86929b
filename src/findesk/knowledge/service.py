"""Article actions: one function per action. Services never commit.

Every change that Fin's copy must follow marks the article ``fin_pending``; the publisher
(``knowledge.publisher``) then writes or deletes its external page. Whether a page should exist
is decided there, from the article as it is: published, not deleted, English.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, object_session

from findesk.kit import html
from findesk.kit.commit_signal import CommitSignal
from findesk.kit.errors import Conflict, Invalid, NotFound
from findesk.kit.text import (
    ARTICLE_BODY_MAX_BYTES,
    ARTICLE_TITLE_MAX,
    URL_MAX,
    invalid,
    text_problem,
)
from findesk.kit.timeutil import utcnow
from findesk.knowledge import locales, repository
from findesk.knowledge.markdown import render, slugify
from findesk.knowledge.models import BODY_FORMATS, STATES, Article, ArticleTranslation

MAX_TITLE = ARTICLE_TITLE_MAX
MAX_BODY = ARTICLE_BODY_MAX_BYTES
MAX_URL = URL_MAX
MAX_DESCRIPTION = 1000
RECREATE = "recreate"  # intercom_hash: Intercom's article must be deleted and created again
_UNSET: Any = object()

# Wakes this process's publisher after a commit that left articles for it.
publish_requested = CommitSignal("kb")


@dataclass
class ArticleDraft:
    """What an author sends; ``None`` fields of an update are left as they are."""

    title: str | None = None
    body: str | None = None
    body_format: str | None = None
    url: str | None = _UNSET  # None clears it (back to findesk's own /help page)
    locale: str | None = None
    state: str | None = None
    slug: str | None = None


def public_url(article: Article, base_url: str) -> str:
    """The URL Fin cites: the article's own, or its page in findesk's help centre (under its
    language when its slug is a language's code, which ``/help/{code}`` lists)."""
    if article.url:
        return article.url
    if locales.exact(article.slug) == article.slug:
        language = own_locale(article) or locales.DEFAULT
        return f"{base_url.rstrip('/')}/help/{language}/{article.slug}"
    return f"{base_url.rstrip('/')}/help/{article.slug}"


def is_publishable(article: Article) -> bool:
    """Whether Fin should have a page for it (external pages are English only, spec 8)."""
    return article.state == "published" and article.deleted_at is None and is_english(article)


def is_english(article: Article) -> bool:
    return article.locale.lower().split("-")[0] == "en"


def create_article(session: Session, draft: ArticleDraft, author_id: str | None) -> Article:
    if draft.title is None:
        raise _invalid("title is required.", field="title")
    article = Article(
        title=_title(draft.title),
        body_format=_body_format(draft.body_format or "markdown"),
        locale=_locale(draft.locale or "en"),
        url=None if draft.url is _UNSET else _url(draft.url),
        author_id=author_id,
    )
    article.body_source = _body(draft.body or "")
    article.body_html = render(article.body_source, article.body_format)
    # Through _set_state, so that a new article is held to the same rules as a published one.
    _set_state(article, _state(draft.state or "draft"))
    article.slug = _unique_slug(session, draft.slug or article.title, None)
    session.add(article)
    _touch(article)
    session.flush()
    return article


def update_article(session: Session, article_id: str, draft: ArticleDraft) -> Article:
    """Partial update: only the fields given change."""
    article = _get(session, article_id)
    if draft.title is not None:
        article.title = _title(draft.title)
    if draft.body_format is not None:
        article.body_format = _body_format(draft.body_format)
    if draft.body is not None:
        article.body_source = _body(draft.body)
    if draft.body is not None or draft.body_format is not None:
        article.body_html = render(article.body_source, article.body_format)
    if draft.url is not _UNSET:
        article.url = _url(draft.url)
    if draft.locale is not None:
        article.locale = _locale(draft.locale)
        own = own_locale(article)
        if own is not None and repository.get_translation(session, article.id, own) is not None:
            raise _invalid(
                f"The article has a {own} translation: delete it before writing the article "
                "itself in that language.",
                field="locale",
            )
    if draft.slug is not None:
        article.slug = _unique_slug(session, draft.slug, article.id)
    if draft.state is not None:
        _set_state(article, _state(draft.state))
    if article.state == "published" and html.is_blank(article.body_html):
        raise _invalid("A published article cannot have an empty body.", field="body")
    _touch(article)
    session.flush()
    return article


def publish(session: Session, article_id: str) -> Article:
    return set_state(session, article_id, "published")


def archive(session: Session, article_id: str) -> Article:
    return set_state(session, article_id, "archived")


def set_state(session: Session, article_id: str, state: str) -> Article:
    article = _get(session, article_id)
    _set_state(article, _state(state))
    _touch(article)
    session.flush()
    return article


def delete_article(session: Session, article_id: str) -> None:
    """Gone for everyone; a page in Fin's library is deleted first, so the row waits for it."""
    article = _get(session, article_id)
    article.deleted_at = utcnow()
    if article.fin_page_id is None and article.intercom_article_id is None:
        session.delete(article)
    else:
        _touch(article)
    session.flush()


def request_publish(article: Article) -> None:
    """Mark the article for the publisher now (a new try clears the retry schedule)."""
    article.fin_pending = True
    article.fin_attempts = 0
    article.fin_next_attempt_at = None
    session = object_session(article)
    if session is not None:
        publish_requested.mark(session)


def request_intercom(article: Article) -> None:
    """Mark the article for the publisher's Articles API phase (its languages other than
    English, as one Intercom article); a new try clears the retry schedule."""
    article.intercom_pending = True
    article.intercom_attempts = 0
    article.intercom_next_attempt_at = None
    session = object_session(article)
    if session is not None:
        publish_requested.mark(session)


# --- translations ----------------------------------------------------------------------------


@dataclass
class TranslationDraft:
    """A translation as an author sends it; ``None`` fields of an update are left as they are."""

    title: str | None = None
    description: str | None = None
    body: str | None = None
    body_format: str | None = None
    state: str | None = None


def own_locale(article: Article) -> str | None:
    """The Intercom locale of the article's own content (None: a tag Intercom has not)."""
    return locales.intercom_locale(article.locale)


def translation_locale(value: str) -> str:
    """Intercom's code for a translation's locale; anything else is refused, clearly."""
    locale = locales.exact(value) if len(value) <= 16 else None
    if locale is None:
        raise _invalid(
            f"locale must be one of Intercom's help centre languages: {locales.supported_list()}.",
            field="locale",
        )
    return locale


def get_article(session: Session, article_id: str) -> Article:
    return _get(session, article_id)


def get_translation(session: Session, article_id: str, locale: str) -> ArticleTranslation:
    article = _get(session, article_id)
    return _get_translation(session, article, locale)


def create_translation(
    session: Session, article_id: str, locale: str, draft: TranslationDraft
) -> ArticleTranslation:
    article = _get(session, article_id)
    code = translation_locale(locale)
    if code == own_locale(article):
        raise _invalid(
            f"The article itself is written in {article.locale}: edit the article for that "
            "language.",
            field="locale",
        )
    if repository.get_translation(session, article.id, code) is not None:
        raise Conflict(f"The article already has a {code} translation.")
    if draft.title is None:
        raise _invalid("title is required.", field="title")
    translation = ArticleTranslation(
        article_id=article.id,
        locale=code,
        title=_title(draft.title),
        description=_description(draft.description or ""),
        body_format=_body_format(draft.body_format or "markdown"),
        body_source=_body(draft.body or ""),
        state="draft",
    )
    translation.body_html = render(translation.body_source, translation.body_format)
    _set_state(translation, _state(draft.state or "draft"))
    session.add(translation)
    _touch_translation(article, translation)
    session.flush()
    return translation


def update_translation(
    session: Session, article_id: str, locale: str, draft: TranslationDraft
) -> ArticleTranslation:
    """Partial update: only the fields given change."""
    article = _get(session, article_id)
    translation = _get_translation(session, article, locale)
    if draft.title is not None:
        translation.title = _title(draft.title)
    if draft.description is not None:
        translation.description = _description(draft.description)
    if draft.body_format is not None:
        translation.body_format = _body_format(draft.body_format)
    if draft.body is not None:
        translation.body_source = _body(draft.body)
    if draft.body is not None or draft.body_format is not None:
        translation.body_html = render(translation.body_source, translation.body_format)
    if draft.state is not None:
        _set_state(translation, _state(draft.state))
    if translation.state == "published" and html.is_blank(translation.body_html):
        raise _invalid("A published translation cannot have an empty body.", field="body")
    _touch_translation(article, translation)
    session.flush()
    return translation


def set_translation_state(
    session: Session, article_id: str, locale: str, state: str
) -> ArticleTranslation:
    return update_translation(session, article_id, locale, TranslationDraft(state=state))


def delete_translation(session: Session, article_id: str, locale: str) -> None:
    article = _get(session, article_id)
    translation = _get_translation(session, article, locale)
    if translation.intercom_hash is not None:
        # Intercom keeps a language an update leaves out: its article is made again without it.
        article.intercom_hash = RECREATE
    session.delete(translation)
    request_intercom(article)
    session.flush()


def _get_translation(session: Session, article: Article, locale: str) -> ArticleTranslation:
    code = locales.exact(locale) if len(locale) <= 16 else None
    translation = None if code is None else repository.get_translation(session, article.id, code)
    if translation is None:
        raise NotFound(f"Article {article.id} has no {locale[:16]} translation.")
    return translation


def _touch_translation(article: Article, translation: ArticleTranslation) -> None:
    translation.updated_at = utcnow()
    request_intercom(article)


def _description(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise _invalid(f"description {problem}.", field="description")
    description = " ".join(value.split())
    if len(description) > MAX_DESCRIPTION:
        detail = f"description must be at most {MAX_DESCRIPTION} characters."
        raise _invalid(detail, field="description")
    return description


# --- helpers ---------------------------------------------------------------------------------


def _invalid(detail: str, *, field: str) -> Invalid:
    return invalid(detail, field=field)


def _get(session: Session, article_id: str) -> Article:
    article = repository.get(session, article_id)
    if article is None:
        raise NotFound(f"No article {article_id}.")
    return article


def _touch(article: Article) -> None:
    article.updated_at = utcnow()
    if is_publishable(article) or article.fin_page_id is not None:
        request_publish(article)
    # The Articles API phase decides, from the article and its translations, whether Intercom
    # should have it; an article with nothing to send there costs it no request.
    request_intercom(article)


def _set_state(row: Article | ArticleTranslation, state: str) -> None:
    """An article's or a translation's state; publishing needs a body."""
    if state == "published" and row.state != "published":
        if html.is_blank(row.body_html):
            noun = "A translation" if isinstance(row, ArticleTranslation) else "An article"
            raise _invalid(f"{noun} needs a body before it is published.", field="body")
        row.published_at = utcnow()
    row.state = state


def _title(value: str) -> str:
    # Checked before whitespace is collapsed, which would hide some control characters.
    problem = text_problem(value)
    if problem is not None:
        raise _invalid(f"title {problem}.", field="title")
    title = " ".join(value.split())
    if not title:
        raise _invalid("title must not be blank.", field="title")
    if len(title) > MAX_TITLE:
        detail = f"title must be at most {MAX_TITLE} characters (it has {len(title)})."
        raise _invalid(detail, field="title")
    return title


def _body(value: str) -> str:
    if len(value.encode(errors="replace")) > MAX_BODY:
        raise _invalid(f"body is larger than {MAX_BODY // 1024} KiB.", field="body")
    problem = text_problem(value)
    if problem is not None:
        raise _invalid(f"body {problem}.", field="body")
    return value


def _body_format(value: str) -> str:
    if value not in BODY_FORMATS:
        raise _invalid("body_format must be markdown or html.", field="body_format")
    return value


def _state(value: str) -> str:
    if value not in STATES:
        raise _invalid("state must be draft, published or archived.", field="state")
    return value


def _locale(value: str) -> str:
    locale = value.strip()
    parts = locale.split("-")
    if not (
        2 <= len(parts[0]) <= 3
        and parts[0].isascii()
        and parts[0].isalpha()
        and all(p.isascii() and p.isalnum() and 1 <= len(p) <= 8 for p in parts[1:])
    ):
        raise _invalid("locale must be a language tag such as en or pt-BR.", field="locale")
    return locale


def _url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    url = value.strip()
    if len(url) > MAX_URL:
        raise _invalid(f"url must be at most {MAX_URL} characters.", field="url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or text_problem(url):
        raise _invalid("url must be an absolute http(s) URL.", field="url")
    return url


def _unique_slug(session: Session, wanted: str, article_id: str | None) -> str:
    base = slugify(wanted)
    slug, number = base, 1
    # ``/help/de`` is the German index: a new slug is never a language's code.
    while locales.exact(slug) == slug or repository.slug_taken(session, slug, article_id):
        number += 1
        slug = f"{base}-{number}"
    return slug
