"""``/help``: the public help centre. Published articles only, read-only, no sign-in.

The only unauthenticated pages besides OAuth: they show what agents chose to publish and
nothing else; drafts, archived and deleted articles are a plain 404. No scripts at all.

Every language has its own pages: ``/help/{locale}`` (the index) and ``/help/{locale}/{slug}``
(an article in that language: a published translation, or the article's own content when it is
written in that language). ``/help`` and ``/help/{slug}`` stay as they were (the article's own
language); they redirect to the visitor's language (``Accept-Language``, ``Vary`` says so) when
that language is published and the visitor did not search, and ``/help/{slug}`` also when the
article's own language is not published. Article pages name their other languages with
``<link rel="alternate" hreflang>`` and a language switcher.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from findesk.kit import html
from findesk.kit.http import db_of, settings_of
from findesk.kit.timeutil import as_utc
from findesk.knowledge import collections, locales, repository, service
from findesk.knowledge.models import Article

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
MAX_PAGE = 10_000
MAX_QUERY = 200
EXCERPT = 180
CSS_PATH = "/help/static/help.css"
SECURITY_HEADERS = {
    # Article bodies are sanitised when saved; this keeps any slip inert: no script runs here.
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' https: data:; style-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _date(value: datetime) -> str:
    value = as_utc(value)
    return f"{value.day} {value:%B %Y}"


templates.env.filters["date"] = _date


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("lang", "en")
    context.setdefault("home", "/help")
    context.setdefault("languages", [])
    lang = str(context["lang"])
    context["dir"] = "rtl" if locales.intercom_locale(lang) in locales.RIGHT_TO_LEFT else "ltr"
    context["css_path"] = CSS_PATH
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    # Unpublishing must take effect at once, for browsers and shared caches alike.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept-Language"
    return response


def _redirect(location: str) -> Response:
    response = RedirectResponse(location, status_code=302)
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _published_locales(session: Any) -> set[str]:
    """Every Intercom locale the help centre has something published in."""
    own = {locales.intercom_locale(tag) for tag in repository.published_own_locales(session)}
    return {code for code in own if code} | repository.published_translation_locales(session)


GROUPED_MAX = 500  # articles looked at for the index's collections


def _groups(
    session: Any, locale: str, entries: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The collections, in order, each with its entries (article id, entry) in this language;
    empty collections left out."""
    views = collections.in_locale(session, locale)
    if not views:
        return []
    membership = collections.members(session, [article_id for article_id, _ in entries])
    groups = []
    for view in views:
        inside = [entry for article_id, entry in entries if membership.get(article_id) == view.id]
        if inside:
            groups.append({"name": view.name, "description": view.description, "articles": inside})
    return groups


def _own_published(article: Article) -> bool:
    return article.state == "published" and article.deleted_at is None


def _versions(session: Any, article: Article) -> dict[str, tuple[str, str]]:
    """The article's published languages: Intercom locale → (title, public path)."""
    found: dict[str, tuple[str, str]] = {}
    own = locales.intercom_locale(article.locale)
    if _own_published(article) and own is not None:
        found[own] = (article.title, f"/help/{own}/{article.slug}")
    if article.state != "archived" and article.deleted_at is None:
        for t in repository.translations(session, article.id):
            if t.state == "published" and t.locale not in found:
                found[t.locale] = (t.title, f"/help/{t.locale}/{article.slug}")
    return found


def _excerpt(body_html: str) -> str:
    text = " ".join(html.to_text(body_html).split())
    if len(text) <= EXCERPT:
        return text
    return text[:EXCERPT].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def _page_number(value: str | None) -> int:
    """Lenient: a bad or missing ``page`` is the first page, never an error page."""
    try:
        number = int(value or "1")
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def _link(q: str, page: int) -> str:
    params = {"q": q} if q else {}
    if page > 1:
        params["page"] = str(page)
    return "/help" + (f"?{urlencode(params)}" if params else "")


@router.get("/help/static/help.css")
def help_css() -> Response:
    return Response(
        (HERE / "static" / "help.css").read_bytes(),
        media_type="text/css",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"},
    )


@router.get("/help", response_class=HTMLResponse)
def help_index(request: Request) -> Response:
    """Published articles, most recently updated first, with a search; a visitor whose
    browser prefers another published language is sent to that language's index."""
    q = " ".join(request.query_params.get("q", "").split())[:MAX_QUERY]
    page = _page_number(request.query_params.get("page"))
    with db_of(request).read_session() as session:
        if not q and "page" not in request.query_params:
            available = _published_locales(session)
            wanted = locales.negotiate(request.headers.get("accept-language"), available)
            if wanted is not None and wanted != locales.DEFAULT:
                return _redirect(f"/help/{wanted}")
        rows = repository.search(
            session,
            query=q or None,
            state="published",
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        articles = [
            {
                "title": a.title,
                "href": f"/help/{a.slug}",
                "locale": a.locale,
                "excerpt": _excerpt(a.body_html),
                "updated_at": a.updated_at,
            }
            for a in rows[:PAGE_SIZE]
        ]
        groups: list[dict[str, Any]] = []
        if not q and page == 1:
            everything = repository.search(session, state="published", limit=GROUPED_MAX)
            groups = _groups(
                session,
                locales.DEFAULT,
                [
                    (a.id, {"title": a.title, "href": f"/help/{a.slug}", "locale": a.locale})
                    for a in everything
                ],
            )
    return _page(
        request,
        "help_index.html",
        q=q,
        groups=groups,
        articles=articles,
        page=page,
        previous_url=_link(q, page - 1) if page > 1 else None,
        next_url=_link(q, page + 1) if len(rows) > PAGE_SIZE else None,
    )


@router.get("/help/{slug}", response_class=HTMLResponse)
def help_article(request: Request, slug: str) -> Response:
    """An article in its own language, or (``slug`` being one of Intercom's locale codes) the
    index of that language."""
    if locales.exact(slug) == slug:
        return _locale_index(request, slug)
    with db_of(request).read_session() as session:
        article = repository.get_by_slug(session, slug[:200])
        if article is None:
            return _not_found(request)
        versions = _versions(session, article)
        own = locales.intercom_locale(article.locale)
        wanted = locales.negotiate(request.headers.get("accept-language"), set(versions))
        if not _own_published(article) or (wanted is not None and wanted != own):
            if wanted is None and versions:
                wanted = sorted(versions)[0]
            if wanted is None:
                return _not_found(request)
            return _redirect(versions[wanted][1])
        return _article_page(request, article, versions, lang=article.locale, own=True)


@router.get("/help/{locale}/{slug}", response_class=HTMLResponse)
def help_article_in(request: Request, locale: str, slug: str) -> Response:
    """The article in one language."""
    if locales.exact(locale) != locale:
        return _not_found(request)
    with db_of(request).read_session() as session:
        article = repository.get_by_slug(session, slug[:200])
        if article is None:
            return _not_found(request)
        versions = _versions(session, article)
        if locale not in versions:
            return _not_found(request, locale)
        if locales.intercom_locale(article.locale) == locale and _own_published(article):
            return _article_page(request, article, versions, lang=locale, own=True)
        translation = repository.get_translation(session, article.id, locale)
        assert translation is not None
        return _article_page(
            request,
            article,
            versions,
            lang=locale,
            own=False,
            title=translation.title,
            description=translation.description,
            body_html=translation.body_html,
            updated_at=translation.updated_at,
        )


def _not_found(request: Request, lang: str = "en") -> HTMLResponse:
    home = "/help" if lang == locales.DEFAULT else f"/help/{lang}"
    return _page(request, "help_not_found.html", status_code=404, lang=lang, home=home)


def _article_page(
    request: Request,
    article: Article,
    versions: dict[str, tuple[str, str]],
    *,
    lang: str,
    own: bool,
    title: str | None = None,
    description: str = "",
    body_html: str | None = None,
    updated_at: datetime | None = None,
) -> HTMLResponse:
    base_url = settings_of(request).base_url
    code = locales.intercom_locale(lang) or lang
    alternates = [
        {"hreflang": c, "href": f"{base_url}{path}", "name": locales.LOCALES[c], "path": path}
        for c, (_title, path) in sorted(versions.items())
    ]
    canonical = (
        service.public_url(article, base_url) if own else f"{base_url}/help/{code}/{article.slug}"
    )
    home = "/help" if own and locales.is_english(lang) else f"/help/{code}"
    return _page(
        request,
        "help_article.html",
        lang=lang,
        home=home,
        article={
            "title": title if title is not None else article.title,
            "description": description,
            "body_html": body_html if body_html is not None else article.body_html,
            "updated_at": updated_at or article.updated_at,
        },
        locale=code,
        canonical_url=canonical,
        alternates=alternates if len(alternates) > 1 else [],
        x_default=f"{base_url}/help/{article.slug}",
    )


def _locale_index(request: Request, locale: str) -> Response:
    """Everything published in one language, most recently updated first, with a search."""
    q = " ".join(request.query_params.get("q", "").split())[:MAX_QUERY]
    page = _page_number(request.query_params.get("page"))
    home = f"/help/{locale}"
    with db_of(request).read_session() as session:
        tags = [
            tag
            for tag in repository.published_own_locales(session)
            if locales.intercom_locale(tag) == locale
        ]
        wanted = (page - 1) * PAGE_SIZE + PAGE_SIZE + 1
        own = repository.published_in_own_locale(
            session, tags, query=q or None, limit=wanted, offset=0
        )
        translated = repository.published_translations_in(
            session, locale, query=q or None, limit=wanted, offset=0
        )
        entries: list[dict[str, Any]] = [
            {
                "title": a.title,
                "href": f"/help/{locale}/{a.slug}",
                "locale": locale,
                "excerpt": _excerpt(a.body_html),
                "updated_at": a.updated_at,
            }
            for a in own
        ] + [
            {
                "title": t.title,
                "href": f"/help/{locale}/{a.slug}",
                "locale": locale,
                "excerpt": t.description or _excerpt(t.body_html),
                "updated_at": t.updated_at,
            }
            for a, t in translated
        ]
        entries.sort(key=lambda e: as_utc(e["updated_at"]), reverse=True)
        groups: list[dict[str, Any]] = []
        if not q and page == 1:
            every_own = repository.published_in_own_locale(
                session, tags, query=None, limit=GROUPED_MAX, offset=0
            )
            every_translated = repository.published_translations_in(
                session, locale, query=None, limit=GROUPED_MAX, offset=0
            )
            link_of = {
                a.id: {"title": a.title, "href": f"/help/{locale}/{a.slug}", "locale": locale}
                for a in every_own
            } | {
                a.id: {"title": t.title, "href": f"/help/{locale}/{a.slug}", "locale": locale}
                for a, t in every_translated
            }
            groups = _groups(session, locale, list(link_of.items()))
        rows = entries[(page - 1) * PAGE_SIZE :]
        available = sorted(_published_locales(session))

    def link(number: int) -> str:
        params = {"q": q} if q else {}
        if number > 1:
            params["page"] = str(number)
        return home + (f"?{urlencode(params)}" if params else "")

    return _page(
        request,
        "help_index.html",
        lang=locale,
        home=home,
        q=q,
        groups=groups,
        articles=rows[:PAGE_SIZE],
        page=page,
        previous_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if len(rows) > PAGE_SIZE else None,
        languages=[
            {"code": c, "name": locales.LOCALES[c], "path": f"/help/{c}", "current": c == locale}
            for c in available
        ],
    )
