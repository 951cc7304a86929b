"""``/help``: the public help centre. Published articles only, read-only, no sign-in.

The only unauthenticated pages besides OAuth: they show what agents chose to publish and
nothing else; drafts, archived and deleted articles are a plain 404. No scripts at all.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, Response

from findesk.kit import html
from findesk.kit.http import db_of, settings_of
from findesk.kit.timeutil import as_utc
from findesk.knowledge import repository, service

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
    context["css_path"] = CSS_PATH
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    # Unpublishing must take effect at once, for browsers and shared caches alike.
    response.headers["Cache-Control"] = "no-cache"
    return response


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
def help_index(request: Request) -> HTMLResponse:
    """Published articles, most recently updated first, with a search."""
    q = " ".join(request.query_params.get("q", "").split())[:MAX_QUERY]
    page = _page_number(request.query_params.get("page"))
    with db_of(request).read_session() as session:
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
                "slug": a.slug,
                "locale": a.locale,
                "excerpt": _excerpt(a.body_html),
                "updated_at": a.updated_at,
            }
            for a in rows[:PAGE_SIZE]
        ]
    return _page(
        request,
        "help_index.html",
        q=q,
        articles=articles,
        page=page,
        previous_url=_link(q, page - 1) if page > 1 else None,
        next_url=_link(q, page + 1) if len(rows) > PAGE_SIZE else None,
    )


@router.get("/help/{slug}", response_class=HTMLResponse)
def help_article(request: Request, slug: str) -> HTMLResponse:
    with db_of(request).read_session() as session:
        article = repository.get_published_by_slug(session, slug[:200])
        if article is None:
            return _page(request, "help_not_found.html", status_code=404)
        return _page(
            request,
            "help_article.html",
            lang=article.locale,
            article=article,
            canonical_url=service.public_url(article, settings_of(request).base_url),
        )
