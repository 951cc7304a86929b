"""The inbox's knowledge base pages: list and search articles, write them with a preview, publish,
archive, delete, and see (and retry) what Fin's Content Library holds of each.

Same rules as the rest of the inbox (``inbox.endpoints``): every page works without JavaScript,
every change is a CSRF-checked POST answered with a redirect, and a form the service refuses is
shown again with the agent's input and the errors next to the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from findesk.inbox.endpoints import back, guarded, render, templates
from findesk.inbox.security import Viewer
from findesk.kit.errors import Forbidden, NotFound, Problem
from findesk.kit.http import db_of, settings_of
from findesk.kit.timeutil import as_utc
from findesk.knowledge import repository, service
from findesk.knowledge.markdown import render as render_body
from findesk.knowledge.models import BODY_FORMATS, STATES, Article
from findesk.knowledge.service import ArticleDraft

router = APIRouter(include_in_schema=False)

BASE = "/inbox/articles"
PAGE_SIZE = 50
STATE_FILTERS = {"all": "All", "draft": "Drafts", "published": "Published", "archived": "Archived"}
# What the form's buttons do to the article's state (None: leave it as it is).
ACTIONS: dict[str, str | None] = {
    "save": None,
    "publish": "published",
    "archive": "archived",
    "draft": "draft",
}
# Notices after a redirect are named by code, so a link cannot make the page say anything else.
NOTICES = {
    "created": "Article created.",
    "saved": "Changes saved.",
    "published": "Published.",
    "archived": "Archived: it is no longer public, and Fin's copy will be removed.",
    "draft": "Moved back to draft: it is no longer public.",
    "deleted": "Article deleted.",
    "retry": "Publishing to Fin will be retried now.",
}
FORM_FIELDS = ("title", "body", "body_format", "locale", "url")


def _utc(value: datetime | None) -> str:
    return f"{as_utc(value):%Y-%m-%d %H:%M} UTC" if value is not None else ""


templates.env.filters["utc"] = _utc


@dataclass(frozen=True)
class FinStatus:
    """What Fin's Content Library holds of an article, as the inbox shows it."""

    kind: str  # published | pending | error | not-publishable | absent
    label: str
    at: datetime | None = None


def fin_status(article: Article) -> FinStatus:
    if article.fin_error:
        return FinStatus("error", f"Error: {article.fin_error}", article.fin_error_at)
    if article.fin_pending:
        return FinStatus("pending", "Pending")
    if article.state == "published" and not service.is_english(article):
        return FinStatus("not-publishable", "Not publishable (non-English)")
    if article.fin_page_id is not None and article.fin_published_at is not None:
        return FinStatus("published", "Published to Fin", article.fin_published_at)
    return FinStatus("absent", "Not in Fin")


templates.env.globals["fin_status"] = fin_status


def _state_filter(value: str | None) -> str:
    return value if value in STATE_FILTERS else "all"


def _offset(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 9 else 0


def _list_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    params = request.query_params
    state = _state_filter(params.get("state"))
    text = (params.get("q") or "").strip()[:200]
    offset = _offset(params.get("offset"))
    with db_of(request).read_session() as session:
        rows = repository.search(
            session,
            query=text or None,
            state=None if state == "all" else state,
            limit=PAGE_SIZE + 1,
            offset=offset,
        )
        counts = repository.count_by_state(session)
    counts = {s: counts.get(s, 0) for s in STATES} | {"all": sum(counts.values())}
    keep = {k: v for k, v in (("q", text), ("state", state)) if v and v != "all"}
    return {
        "viewer": viewer,
        "articles": list(rows[:PAGE_SIZE]),
        "state": state,
        "states": STATE_FILTERS,
        "counts": counts,
        "q": text,
        "filter_query": urlencode(keep),
        "next_offset": offset + PAGE_SIZE if len(rows) > PAGE_SIZE else None,
        "fin_configured": settings_of(request).intercom_access_token is not None,
        "notice": NOTICES.get(params.get("notice") or ""),
    }


def _form_of(article: Article | None) -> dict[str, str]:
    if article is None:
        return {"title": "", "body": "", "body_format": "markdown", "locale": "en", "url": ""}
    return {
        "title": article.title,
        "body": article.body_source,
        "body_format": article.body_format,
        "locale": article.locale,
        "url": article.url or "",
    }


def _form_input(form: FormData) -> dict[str, str]:
    values = {name: form.get(name) for name in FORM_FIELDS}
    # Browsers send textarea line breaks as CRLF; authors wrote LF.
    return {k: v.replace("\r\n", "\n") if isinstance(v, str) else "" for k, v in values.items()}


def _draft(values: dict[str, str]) -> ArticleDraft:
    return ArticleDraft(
        title=values["title"],
        body=values["body"],
        body_format=values["body_format"],
        locale=values["locale"],
        url=values["url"],
    )


def _load(request: Request, article_id: str) -> Article:
    with db_of(request).read_session() as session:
        article = repository.get(session, article_id)
    if article is None:
        raise NotFound(f"No article {article_id}.")
    return article


def _edit_page(
    request: Request,
    viewer: Viewer,
    article: Article | None,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
    http_status: int = 200,
) -> Response:
    values = form if form is not None else _form_of(article)
    body_format = values["body_format"] if values["body_format"] in BODY_FORMATS else "markdown"
    preview = (
        article.body_html
        if form is None and article is not None
        else render_body(values["body"], body_format)
    )
    base_url = settings_of(request).base_url
    return render(
        request,
        "article_edit.html",
        http_status=http_status,
        viewer=viewer,
        article=article,
        form=values,
        formats=BODY_FORMATS,
        preview_html=preview,
        public_url=service.public_url(article, base_url) if article is not None else None,
        errors=errors or {},
        error=error,
        notice=notice,
    )


def _refused(exc: Problem) -> tuple[dict[str, str], str]:
    """Field errors (first message per field) and the summary of a refused form."""
    fields: dict[str, str] = {}
    for item in exc.errors or ():
        field, message = str(item.get("field", "")), str(item.get("message", ""))
        fields.setdefault(field, message)
    return fields, exc.detail


# --- the list ----------------------------------------------------------------------------------


@router.get(BASE)
async def article_list(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_list_context, request, viewer)
        return render(request, "articles.html", **context)

    return await guarded(request, run, page=True)


@router.get(f"{BASE}/new")
async def new_article_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        return _edit_page(request, viewer, None)

    return await guarded(request, run, page=True)


# Before the ``{article_id}`` routes, which would take "preview" for an id.
@router.post(f"{BASE}/preview")
async def preview(request: Request) -> Response:
    """The sanitised HTML of a body being written, for the editor's live preview."""

    async def run(viewer: Viewer) -> Response:
        values = _form_input(await request.form())
        body_format = values["body_format"] if values["body_format"] in BODY_FORMATS else "markdown"
        html = await run_in_threadpool(render_body, values["body"], body_format)
        return JSONResponse({"html": html}, headers={"Cache-Control": "no-store"})

    return await guarded(request, run, page=False)


@router.post(BASE)
async def create(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        values = _form_input(form)
        action = str(form.get("action") or "save")
        if action == "preview":
            return _edit_page(request, viewer, None, form=values, notice="Preview: not saved yet.")
        db = db_of(request)

        def apply() -> str:
            with db.transaction() as session:
                article = service.create_article(session, _draft(values), viewer.agent.id)
                if action == "publish":
                    # Through the state change, which refuses an empty body.
                    service.publish(session, article.id)
                return article.id

        try:
            article_id = await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            errors, summary = _refused(exc)
            return _edit_page(
                request, viewer, None, form=values, errors=errors, error=summary, http_status=422
            )
        notice = "published" if action == "publish" else "created"
        return back(f"{BASE}/{article_id}?notice={notice}")

    return await guarded(request, run, page=False)


@router.get(BASE + "/{article_id}")
async def edit_page(request: Request, article_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        article = await run_in_threadpool(_load, request, article_id)
        notice = NOTICES.get(request.query_params.get("notice") or "")
        return _edit_page(request, viewer, article, notice=notice)

    return await guarded(request, run, page=True)


@router.post(BASE + "/{article_id}")
async def save(request: Request, article_id: str) -> Response:
    """Save the form; its button says whether the state changes too (publish, archive, draft)."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        values = _form_input(form)
        action = str(form.get("action") or "save")
        if action == "preview":
            article = await run_in_threadpool(_load, request, article_id)
            return _edit_page(
                request, viewer, article, form=values, notice="Preview: not saved yet."
            )
        if action not in ACTIONS:
            action = "save"
        draft = _draft(values)
        draft.state = ACTIONS[action]
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                service.update_article(session, article_id, draft)

        try:
            await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            errors, summary = _refused(exc)
            article = await run_in_threadpool(_load, request, article_id)
            return _edit_page(
                request,
                viewer,
                article,
                form=values,
                errors=errors,
                error=summary,
                http_status=422,
            )
        return back(f"{BASE}/{article_id}?notice={draft.state or 'saved'}")

    return await guarded(request, run, page=False)


@router.post(BASE + "/{article_id}/retry")
async def retry(request: Request, article_id: str) -> Response:
    """Publish to Fin again now, without waiting for the failed attempt's back-off."""

    async def run(viewer: Viewer) -> Response:
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                article = repository.get(session, article_id)
                if article is None:
                    raise NotFound(f"No article {article_id}.")
                service.request_publish(article)

        await run_in_threadpool(apply)
        return back(f"{BASE}/{article_id}?notice=retry")

    return await guarded(request, run, page=False)


@router.post(BASE + "/{article_id}/delete")
async def delete(request: Request, article_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                service.delete_article(session, article_id)

        await run_in_threadpool(apply)
        return back(f"{BASE}?notice=deleted")

    return await guarded(request, run, page=False)
