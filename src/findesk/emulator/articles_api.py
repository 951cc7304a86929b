"""An emulation of Intercom's Articles API (the multilingual Help Center), API 2.14.

Spec section 8 gives the endpoints; the shapes follow Intercom's published 2.14 schemas
(``create_article_request``, ``article``, ``article_list_item``, ``article_translated_content``,
``article_content``, ``deleted_article_object``). The routes are added to the app
``content_api.create_content_api`` makes, so they share its bearer auth, per-token rate limit
(``X-RateLimit-*``, 429), ``Intercom-Version`` check, request ids and the ``error.list`` shape.
The articles live in the same database as the content library, in their own tables
(``articles``, ``article_contents``; ``create_all`` on start, no Alembic, like ``content_store``).

Endpoints
    ``POST /articles``, ``GET /articles`` (page style, most recently updated first; ``page`` from
    1, ``per_page`` 1..150, default 50; ``pages.next`` is the URL of the next page or null),
    ``GET/PUT/DELETE /articles/{id}``, ``GET /articles/search?phrase=&state=``. Ids in paths
    that are not integers are 404 ``not_found``, like unknown ones.

The article
    One article has one piece of content per locale; the workspace's default locale is ``en``
    (``default_locale``). The top-level ``title``, ``description``, ``body``, ``author_id``,
    ``state`` and ``url`` are the default locale's content; ``translated_content`` is
    ``{"type": "article_translated_content", "<locale>": {"type": "article_content", "title",
    "description", "body", "author_id", "state", "created_at", "updated_at", "url"}}`` with a
    key for every locale the article has (the default one included) and no key for the others.
    ``id`` is a string of digits, ``parent_id`` an integer or null, times Unix seconds,
    ``workspace_id`` the constant :data:`WORKSPACE_ID`. ``statistics`` (on create, get and
    update; not in lists, as Intercom's ``article_list_item`` has none) is all zeros: the
    emulator has no readers.

Decisions where Intercom's text is silent
    * ``author_id`` must be the id of one of the emulator's teammates (``teammate_ids``, default
      :data:`DEFAULT_TEAMMATE_IDS`); any other integer is 400 ``parameter_invalid``. Missing
      from both the main body and the default locale's ``translated_content`` object: 400
      ``parameter_not_found`` with Intercom's message. A translation without its own
      ``author_id`` takes the article's.
    * ``title`` is required (non-blank) for the default locale and for every locale an article
      gets; missing is ``parameter_not_found``. Top-level fields win over the same fields in
      ``translated_content.en``.
    * ``state`` (``published``|``draft``) defaults to ``draft`` for every new locale, as
      Intercom's create request does for the article. Only published content is answered from
      and shown in the help centre.
    * ``translated_content`` keys must be Intercom's locales (:data:`LOCALES`; ``type`` is the
      only other key allowed); any other key is 400 ``parameter_invalid`` naming the field
      (``translated_content.xx``). A value must be an object; on PUT a ``null`` value deletes
      that locale's content (except the default locale's: 400 ``parameter_invalid``).
    * ``parent_id`` is any positive integer (the emulator has no collections to check it
      against); ``parent_type`` defaults to ``collection`` when a ``parent_id`` is given and
      is null otherwise. ``parent_id: null`` on PUT detaches the article.
    * ``body`` is stored as sent (HTML); the help centre page sanitises it when it serves it,
      and the answerer takes only its text.
    * PUT changes only the fields sent; per locale, only the sent fields of that locale's
      content; a locale not yet on the article is added (and needs a title). ``updated_at`` of
      the article moves on every PUT; a locale's moves when its content changes.
    * ``url`` is the emulator's own help-centre page of that locale,
      ``{help_center_url}/{locale}/articles/{id}-{slug of the title}``; the page is served
      (public, published content only) by :func:`help_center_router`, so Fin's citation opens.
    * ``GET /articles/search`` takes ``phrase`` (words all found, case-insensitively, in the
      title, description or body text of some locale) and ``state`` (``published``|``draft``|
      ``all``, default all; an article has a state when one of its locales has it), and
      answers ``{"type": "list", "total_count", "data": {"articles":
      [...], "highlights": []}, "pages": {...}}``. No highlights are computed.
"""

from __future__ import annotations

import html as _html
import math
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import (
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from findesk.emulator.content_api import ApiError, json_object
from findesk.kit.html import sanitize, to_text

WORKSPACE_ID = "findesk-emulator"
DEFAULT_LOCALE = "en"
DEFAULT_TEAMMATE_IDS: tuple[int, ...] = (1, 2, 3)
DEFAULT_HELP_CENTER_URL = "http://127.0.0.1:8090/help"
#: Intercom's ``translated_content`` keys (API 2.14).
LOCALES = (
    "ar", "bg", "bs", "ca", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "he", "hr",
    "hu", "id", "it", "ja", "ko", "lt", "lv", "mn", "nb", "nl", "pl", "pt", "ro", "ru", "sl",
    "sr", "sv", "tr", "vi", "pt-BR", "zh-CN", "zh-TW",
)  # fmt: skip
STATES = ("published", "draft")
PARENT_TYPES = ("collection", "section")
CONTENT_FIELDS = ("title", "description", "body", "author_id", "state")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 150


# --- storage ----------------------------------------------------------------------------------


class ArticlesBase(DeclarativeBase):
    metadata = MetaData()


class ArticleRow(ArticlesBase):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parent_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    default_locale: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer, index=True)


class ArticleContentRow(ArticlesBase):
    __tablename__ = "article_contents"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    locale: Mapped[str] = mapped_column(String(8), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    author_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Content:
    locale: str
    title: str
    description: str | None
    body: str | None
    author_id: int
    state: str
    created_at: int
    updated_at: int
    url: str


@dataclass(frozen=True)
class Article:
    id: int
    parent_id: int | None
    parent_type: str | None
    default_locale: str
    created_at: int
    updated_at: int
    contents: dict[str, Content]

    @property
    def main(self) -> Content:
        return self.contents[self.default_locale]


@dataclass(frozen=True)
class ArticlePage:
    """One published locale of an article, as the answerer reads it (a ``PageLike``)."""

    id: int
    title: str
    html: str
    url: str | None
    locale: str


_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def slugify(text: str, limit: int = 60) -> str:
    """ASCII slug for URLs: umlauts spelt out (ü -> ue), other accents dropped."""
    folded = text.lower().translate(_UMLAUTS)
    folded = unicodedata.normalize("NFKD", folded).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    return slug[:limit].rstrip("-")


class ArticleStore:
    """The Help Center's articles, in the content library's database (its ``engine``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        help_center_url: str = DEFAULT_HELP_CENTER_URL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        ArticlesBase.metadata.create_all(engine)
        self.help_center_url = help_center_url.rstrip("/")
        self._clock = clock
        self._write_lock = threading.Lock()

    def _now(self) -> int:
        return int(self._clock())

    def url(self, article_id: int, locale: str, title: str) -> str:
        slug = slugify(title)
        ref = f"{article_id}-{slug}" if slug else str(article_id)
        return f"{self.help_center_url}/{locale}/articles/{ref}"

    def _article(self, row: ArticleRow, contents: Iterable[ArticleContentRow]) -> Article:
        return Article(
            id=row.id,
            parent_id=row.parent_id,
            parent_type=row.parent_type,
            default_locale=row.default_locale,
            created_at=row.created_at,
            updated_at=row.updated_at,
            contents={
                c.locale: Content(
                    locale=c.locale,
                    title=c.title,
                    description=c.description,
                    body=c.body,
                    author_id=c.author_id,
                    state=c.state,
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                    url=self.url(row.id, c.locale, c.title),
                )
                for c in sorted(contents, key=lambda c: LOCALES.index(c.locale))
            },
        )

    def _load(self, session: Session, row: ArticleRow) -> Article:
        contents = session.scalars(
            select(ArticleContentRow).where(ArticleContentRow.article_id == row.id)
        )
        return self._article(row, contents)

    def create(
        self,
        parent_id: int | None,
        parent_type: str | None,
        contents: dict[str, dict[str, Any]],
    ) -> Article:
        """``contents``: locale -> complete content fields (validated by the caller)."""
        now = self._now()
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = ArticleRow(
                parent_id=parent_id,
                parent_type=parent_type,
                default_locale=DEFAULT_LOCALE,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            for locale, fields in contents.items():
                session.add(
                    ArticleContentRow(
                        article_id=row.id, locale=locale, created_at=now, updated_at=now, **fields
                    )
                )
            session.flush()
            return self._load(session, row)

    def get(self, article_id: int) -> Article | None:
        with Session(self.engine) as session:
            row = session.get(ArticleRow, article_id)
            return None if row is None else self._load(session, row)

    def _many(self, session: Session, rows: list[ArticleRow]) -> list[Article]:
        ids = [r.id for r in rows]
        by_article: dict[int, list[ArticleContentRow]] = {i: [] for i in ids}
        if ids:
            for content in session.scalars(
                select(ArticleContentRow).where(ArticleContentRow.article_id.in_(ids))
            ):
                by_article[content.article_id].append(content)
        return [self._article(r, by_article[r.id]) for r in rows]

    def list_page(self, offset: int, limit: int) -> tuple[list[Article], int]:
        """Most recently updated first (ties: newest id first)."""
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(ArticleRow)) or 0
            rows = list(
                session.scalars(
                    select(ArticleRow)
                    .order_by(ArticleRow.updated_at.desc(), ArticleRow.id.desc())
                    .offset(offset)
                    .limit(limit)
                )
            )
            return self._many(session, rows), total

    def all(self) -> list[Article]:
        with Session(self.engine) as session:
            rows = list(
                session.scalars(
                    select(ArticleRow).order_by(ArticleRow.updated_at.desc(), ArticleRow.id.desc())
                )
            )
            return self._many(session, rows)

    def update(
        self,
        article_id: int,
        article_fields: dict[str, Any],
        contents: dict[str, dict[str, Any] | None],
    ) -> Article | None:
        """Sets the given article columns; per locale merges the given content fields (a new
        locale gets them all from the caller), ``None`` deletes that locale's content."""
        now = self._now()
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(ArticleRow, article_id)
            if row is None:
                return None
            for name, value in article_fields.items():
                setattr(row, name, value)
            row.updated_at = now
            for locale, fields in contents.items():
                content = session.get(ArticleContentRow, (article_id, locale))
                if fields is None:
                    if content is not None:
                        session.delete(content)
                    continue
                if content is None:
                    content = ArticleContentRow(
                        article_id=article_id, locale=locale, created_at=now
                    )
                    session.add(content)
                for name, value in fields.items():
                    setattr(content, name, value)
                content.updated_at = now
            session.flush()
            return self._load(session, row)

    def delete(self, article_id: int) -> bool:
        with self._write_lock, Session(self.engine) as session, session.begin():
            row = session.get(ArticleRow, article_id)
            if row is None:
                return False
            # Explicit, so it does not depend on PRAGMA foreign_keys being on.
            session.execute(
                delete(ArticleContentRow).where(ArticleContentRow.article_id == article_id)
            )
            session.delete(row)
            return True

    def published_pages(self) -> list[ArticlePage]:
        """Every published locale of every article, for the answerer (oldest article first)."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(
                    ArticleContentRow.article_id,
                    ArticleContentRow.locale,
                    ArticleContentRow.title,
                    ArticleContentRow.body,
                )
                .where(ArticleContentRow.state == "published")
                .order_by(ArticleContentRow.article_id, ArticleContentRow.locale)
            )
            return [
                ArticlePage(
                    id=r.article_id,
                    title=r.title,
                    html=r.body or "",
                    url=self.url(r.article_id, r.locale, r.title),
                    locale=r.locale,
                )
                for r in rows
            ]


def articles_of(app: FastAPI) -> ArticleStore:
    """The article store behind an app made by ``create_content_api``."""
    store: ArticleStore = app.state.article_store
    return store


# --- validation -------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", message, field)


def _text(value: Any, field: str, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise ApiError(400, "parameter_not_found", f"{field} is required", field)
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _invalid(field, f"{field} must be a {'non-empty ' if required else ''}string")
    return value


def _positive_int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise _invalid(field, f"{field} must be a positive integer")
    return value


def _one_of(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _invalid(field, f"{field} must be one of {', '.join(choices)}")
    return str(value)


class _Validator:
    def __init__(self, teammate_ids: frozenset[int]) -> None:
        self.teammate_ids = teammate_ids

    def author(self, value: Any, field: str) -> int:
        author_id = _positive_int(value, field)
        if author_id not in self.teammate_ids:
            raise _invalid(field, f"{field} {author_id} is not a teammate of this workspace")
        return author_id

    def content(
        self, raw: Any, field: str, *, new: bool, default_author: int | None
    ) -> dict[str, Any]:
        """The sent fields of one ``article_content`` (all of them, defaults filled, if new);
        ``field`` names it in errors (empty: the article's top level)."""
        if not isinstance(raw, dict):
            raise _invalid(field, f"{field} must be an object")

        def name_of(name: str) -> str:
            return f"{field}.{name}" if field else name

        fields: dict[str, Any] = {}
        if new or "title" in raw:
            fields["title"] = _text(raw.get("title"), name_of("title"), required=True)
        for name in ("description", "body"):
            if name in raw or new:
                fields[name] = _text(raw.get(name), name_of(name), required=False)
        if raw.get("author_id") is not None:
            fields["author_id"] = self.author(raw["author_id"], name_of("author_id"))
        elif new:
            if default_author is None:
                raise ApiError(
                    400,
                    "parameter_not_found",
                    "author_id must be in the main body or default locale translated_content "
                    "object",
                    "author_id",
                )
            fields["author_id"] = default_author
        if raw.get("state") is not None:
            fields["state"] = _one_of(raw["state"], name_of("state"), STATES)
        elif new:
            fields["state"] = "draft"
        return fields

    def translations(self, body: dict[str, Any]) -> dict[str, Any]:
        """``translated_content`` as locale -> raw value (keys checked)."""
        raw = body.get("translated_content")
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise _invalid("translated_content", "translated_content must be an object")
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "type":
                if value not in (None, "article_translated_content"):
                    raise _invalid(
                        "translated_content.type",
                        "translated_content.type must be article_translated_content",
                    )
                continue
            if key not in LOCALES:
                raise _invalid(
                    f"translated_content.{key}",
                    f"{key!r} is not a supported locale (one of {', '.join(LOCALES)})",
                )
            out[key] = value
        return out

    def parent(
        self, body: dict[str, Any], current_id: int | None, current_type: str | None
    ) -> dict[str, Any]:
        """The ``parent_id``/``parent_type`` columns to set; a type needs a parent."""
        parent_id, parent_type = current_id, current_type
        if "parent_id" in body:
            parent_id = (
                None if body["parent_id"] is None else _positive_int(body["parent_id"], "parent_id")
            )
        if body.get("parent_type") is not None:
            parent_type = _one_of(body["parent_type"], "parent_type", PARENT_TYPES)
        if parent_id is None:
            parent_type = None
        elif parent_type is None:
            parent_type = "collection"
        if (parent_id, parent_type) == (current_id, current_type):
            return {}
        return {"parent_id": parent_id, "parent_type": parent_type}


def _main_raw(body: dict[str, Any], translations: dict[str, Any]) -> dict[str, Any]:
    """The default locale's content as sent: ``translated_content.en`` under the top level."""
    nested = translations.get(DEFAULT_LOCALE)
    if nested is not None and not isinstance(nested, dict):
        field = f"translated_content.{DEFAULT_LOCALE}"
        raise _invalid(field, f"{field} must be an object")
    merged = dict(nested) if isinstance(nested, dict) else {}
    merged.update({name: body[name] for name in CONTENT_FIELDS if name in body})
    return merged


# --- shapes -----------------------------------------------------------------------------------


def content_json(content: Content) -> dict[str, Any]:
    return {
        "type": "article_content",
        "title": content.title,
        "description": content.description,
        "body": content.body,
        "author_id": content.author_id,
        "state": content.state,
        "created_at": content.created_at,
        "updated_at": content.updated_at,
        "url": content.url,
    }


def article_json(article: Article, *, statistics: bool = True) -> dict[str, Any]:
    main = article.main
    translated: dict[str, Any] = {"type": "article_translated_content"}
    translated.update({locale: content_json(c) for locale, c in article.contents.items()})
    out: dict[str, Any] = {
        "type": "article",
        "id": str(article.id),
        "workspace_id": WORKSPACE_ID,
        "title": main.title,
        "description": main.description,
        "body": main.body,
        "author_id": main.author_id,
        "state": main.state,
        "created_at": article.created_at,
        "updated_at": article.updated_at,
        "url": main.url,
        "parent_id": article.parent_id,
        "parent_type": article.parent_type,
        "default_locale": article.default_locale,
        "translated_content": translated,
    }
    if statistics:
        out["statistics"] = {
            "type": "article_statistics",
            "views": 0,
            "conversions": 0,
            "reactions": 0,
            "happy_reaction_percentage": 0,
            "neutral_reaction_percentage": 0,
            "sad_reaction_percentage": 0,
        }
    return out


def _paging(request: Request) -> tuple[int, int]:
    def number(name: str, default: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
            raise _invalid(name, f"{name} must be an integer from 1 to {maximum}")
        return int(raw)

    return number("page", 1, 10**9), number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)


def _pages(request: Request, page: int, per_page: int, total: int) -> dict[str, Any]:
    total_pages = math.ceil(total / per_page)
    next_url = None
    if page < total_pages:
        query = {**request.query_params, "page": str(page + 1), "per_page": str(per_page)}
        next_url = f"{str(request.url).split('?', 1)[0]}?{urlencode(query)}"
    return {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": total_pages,
        "next": next_url,
    }


def _path_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ApiError(404, "not_found", "Article not found")
    return int(raw)


_WORD_RE = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return set(_WORD_RE.findall(text.casefold()))


def _matches(article: Article, words: set[str]) -> bool:
    for c in article.contents.values():
        text = " ".join([c.title, c.description or "", to_text(c.body or "")])
        if words <= _words(text):
            return True
    return False


# --- the routes -------------------------------------------------------------------------------


def add_articles_api(
    app: FastAPI,
    engine: Engine,
    *,
    teammate_ids: Iterable[int] = DEFAULT_TEAMMATE_IDS,
    help_center_url: str = DEFAULT_HELP_CENTER_URL,
    clock: Callable[[], float] = time.time,
) -> ArticleStore:
    """Adds the Articles API to ``app`` (one made by ``create_content_api``), stored in
    ``engine``'s database."""
    store = ArticleStore(engine, help_center_url=help_center_url, clock=clock)
    app.state.article_store = store
    check = _Validator(frozenset(teammate_ids))

    def found(article_id: str) -> Article:
        article = store.get(_path_id(article_id))
        if article is None:
            raise ApiError(404, "not_found", "Article not found")
        return article

    @app.post("/articles")
    def create_article(body: dict[str, Any] = Depends(json_object)) -> Any:
        translations = check.translations(body)
        main_raw = _main_raw(body, translations)
        if body.get("title") is None:
            raise ApiError(400, "parameter_not_found", "title is required", "title")
        if main_raw.get("author_id") is None:
            raise ApiError(
                400,
                "parameter_not_found",
                "author_id must be in the main body or default locale translated_content object",
                "author_id",
            )
        main = check.content(main_raw, "", new=True, default_author=None)
        contents = {DEFAULT_LOCALE: main}
        for locale, raw in translations.items():
            if locale == DEFAULT_LOCALE or raw is None:
                continue
            contents[locale] = check.content(
                raw,
                f"translated_content.{locale}",
                new=True,
                default_author=main["author_id"],
            )
        parent = check.parent(body, None, None)
        article = store.create(parent.get("parent_id"), parent.get("parent_type"), contents)
        return article_json(article)

    @app.get("/articles")
    def list_articles(request: Request) -> Any:
        page, per_page = _paging(request)
        articles, total = store.list_page((page - 1) * per_page, per_page)
        return {
            "type": "list",
            "data": [article_json(a, statistics=False) for a in articles],
            "total_count": total,
            "pages": _pages(request, page, per_page, total),
        }

    @app.get("/articles/search")
    def search_articles(request: Request) -> Any:
        page, per_page = _paging(request)
        phrase = request.query_params.get("phrase") or ""
        state = request.query_params.get("state") or "all"
        _one_of(state, "state", (*STATES, "all"))
        words = _words(phrase)
        hits = [
            a
            for a in store.all()
            if (state == "all" or any(c.state == state for c in a.contents.values()))
            and _matches(a, words)
        ]
        start = (page - 1) * per_page
        return {
            "type": "list",
            "total_count": len(hits),
            "data": {
                "articles": [article_json(a, statistics=False) for a in hits[start:][:per_page]],
                "highlights": [],
            },
            "pages": _pages(request, page, per_page, len(hits)),
        }

    @app.get("/articles/{article_id}")
    def get_article(article_id: str) -> Any:
        return article_json(found(article_id))

    @app.put("/articles/{article_id}")
    def update_article(article_id: str, body: dict[str, Any] = Depends(json_object)) -> Any:
        current = found(article_id)
        translations = check.translations(body)
        contents: dict[str, dict[str, Any] | None] = {}
        if translations.get(DEFAULT_LOCALE, {}) is None:
            raise _invalid(
                f"translated_content.{DEFAULT_LOCALE}", "the default locale cannot be removed"
            )
        main_raw = _main_raw(body, translations)
        if main_raw:
            contents[DEFAULT_LOCALE] = check.content(main_raw, "", new=False, default_author=None)
        author = contents.get(DEFAULT_LOCALE, {}) or {}
        default_author = author.get("author_id", current.main.author_id)
        for locale, raw in translations.items():
            if locale == DEFAULT_LOCALE:
                continue
            field = f"translated_content.{locale}"
            contents[locale] = (
                None
                if raw is None
                else check.content(
                    raw, field, new=locale not in current.contents, default_author=default_author
                )
            )
        article_fields = check.parent(body, current.parent_id, current.parent_type)
        article = store.update(current.id, article_fields, contents)
        if article is None:  # deleted in between
            raise ApiError(404, "not_found", "Article not found")
        return article_json(article)

    @app.delete("/articles/{article_id}")
    def delete_article(article_id: str) -> Any:
        if not store.delete(_path_id(article_id)):
            raise ApiError(404, "not_found", "Article not found")
        return {"id": str(int(article_id)), "object": "article", "deleted": True}

    return store


# --- the public help centre -------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="{lang}">
<head><meta charset="utf-8"><title>{title}</title>{alternates}</head>
<body><main><h1>{title}</h1>{description}<article>{body}</article></main></body>
</html>
"""


def help_center_router(store: ArticleStore, prefix: str = "/help") -> APIRouter:
    """The help centre's article pages, where the articles' ``url`` point: public, published
    content only (drafts and unknown articles are 404), bodies sanitised."""
    router = APIRouter()

    @router.get(prefix + "/{locale}/articles/{ref}", response_class=HTMLResponse)
    def article_page(locale: str, ref: str) -> HTMLResponse:
        digits = ref.split("-", 1)[0]
        article = store.get(int(digits)) if digits.isascii() and digits.isdigit() else None
        content = None if article is None else article.contents.get(locale)
        if article is None or content is None or content.state != "published":
            return HTMLResponse("<!doctype html><title>Not found</title>", status_code=404)
        alternates = "".join(
            f'<link rel="alternate" hreflang="{c.locale}" href="{_html.escape(c.url, quote=True)}">'
            for c in article.contents.values()
            if c.state == "published"
        )
        description = (
            f"<p>{_html.escape(content.description, quote=False)}</p>"
            if content.description
            else ""
        )
        return HTMLResponse(
            _PAGE.format(
                lang=_html.escape(locale, quote=True),
                title=_html.escape(content.title, quote=False),
                alternates=alternates,
                description=description,
                body=sanitize(content.body or ""),
            )
        )

    return router


__all__ = [
    "DEFAULT_TEAMMATE_IDS",
    "LOCALES",
    "Article",
    "ArticlePage",
    "ArticleStore",
    "Content",
    "add_articles_api",
    "article_json",
    "articles_of",
    "help_center_router",
    "slugify",
]
