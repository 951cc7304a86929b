"""The inbox's knowledge base pages: list and search articles, write them with a preview, publish,
archive, delete, and see (and retry) what Fin's Content Library holds of each; write an article's
translations (a locale picker on its page) and see what Intercom's help centre holds of them.

Same rules as the rest of the inbox (``inbox.endpoints``): every page works without JavaScript,
every change is a CSRF-checked POST answered with a redirect, and a form the service refuses is
shown again with the agent's input and the errors next to the fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from findesk.inbox.endpoints import back, guarded, render, templates
from findesk.inbox.security import Viewer
from findesk.kit.errors import Forbidden, NotFound, Problem
from findesk.kit.http import db_of, settings_of
from findesk.kit.text import invalid
from findesk.kit.timeutil import as_utc
from findesk.knowledge import collections, intercom_articles, locales, repository, service
from findesk.knowledge.markdown import render as render_body
from findesk.knowledge.models import BODY_FORMATS, STATES, Article, ArticleTranslation
from findesk.knowledge.service import ArticleDraft, TranslationDraft

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
    "intercom-retry": "Publishing to Intercom's help centre will be retried now.",
    "translation-deleted": "Translation deleted.",
    "collection": "Collection changed.",
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


@dataclass(frozen=True)
class IntercomStatus:
    """What Intercom's help centre holds of a translation, as the inbox shows it."""

    kind: str  # published | pending | error | absent
    label: str
    at: datetime | None = None


def intercom_status(
    article: Article, translation: ArticleTranslation, author_id: int | None
) -> IntercomStatus:
    if article.intercom_error:
        return IntercomStatus(
            "error", f"Error: {article.intercom_error}", article.intercom_error_at
        )
    if intercom_articles.translation_is_current(translation, author_id):
        return IntercomStatus("published", "In Intercom", translation.intercom_sent_at)
    if article.intercom_pending:
        return IntercomStatus("pending", "Pending")
    return IntercomStatus("absent", "Not in Intercom")


def _translations_context(request: Request, article: Article) -> dict[str, Any]:
    author_id = settings_of(request).intercom_article_author_id
    with db_of(request).read_session() as session:
        rows = list(repository.translations(session, article.id))
        all_collections = list(collections.all_collections(session))
        collection_id = collections.collection_of(session, article.id)
    taken = {t.locale for t in rows} | {service.own_locale(article)}
    return {
        "translations": [(t, intercom_status(article, t, author_id)) for t in rows],
        "locale_choices": [(c, n) for c, n in locales.LOCALES.items() if c not in taken],
        "locale_names": locales.LOCALES,
        "collections": all_collections,
        "collection_id": collection_id,
    }


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
        **(_translations_context(request, article) if article is not None else {}),
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


async def _change_then_back(
    request: Request, change: Callable[[Session], object], to: str
) -> Response:
    """A form that makes one change in a transaction, then goes back to ``to``."""

    async def run(viewer: Viewer) -> Response:
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                change(session)

        await run_in_threadpool(apply)
        return back(to)

    return await guarded(request, run, page=False)


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
    return await _change_then_back(
        request,
        lambda session: service.delete_article(session, article_id),
        f"{BASE}?notice=deleted",
    )


# --- translations --------------------------------------------------------------------------------

TRANSLATION_FIELDS = ("title", "description", "body", "body_format")
TRANSLATION_NOTICES = {
    "created": "Translation created.",
    "saved": "Changes saved.",
    "published": "Published: it is public, and Intercom's help centre will get it.",
    "archived": "Archived: it is no longer public.",
    "draft": "Moved back to draft: it is no longer public.",
}


def _translation_input(form: FormData) -> dict[str, str]:
    values = {name: form.get(name) for name in TRANSLATION_FIELDS}
    return {k: v.replace("\r\n", "\n") if isinstance(v, str) else "" for k, v in values.items()}


def _translation_form(translation: ArticleTranslation | None) -> dict[str, str]:
    if translation is None:
        return {"title": "", "description": "", "body": "", "body_format": "markdown"}
    return {
        "title": translation.title,
        "description": translation.description,
        "body": translation.body_source,
        "body_format": translation.body_format,
    }


def _load_translation(
    request: Request, article_id: str, locale: str
) -> tuple[Article, ArticleTranslation | None, str]:
    """The article, its translation in ``locale`` (None: not written yet) and Intercom's code
    for ``locale``; a locale Intercom has not is a 404."""
    code = locales.exact(locale) if len(locale) <= 16 else None
    with db_of(request).read_session() as session:
        article = repository.get(session, article_id)
        if article is None:
            raise NotFound(f"No article {article_id}.")
        if code is None or code == service.own_locale(article):
            raise NotFound(f"No {locale[:16]} translation of this article can be written here.")
        return article, repository.get_translation(session, article.id, code), code


def _translation_page(
    request: Request,
    viewer: Viewer,
    article: Article,
    translation: ArticleTranslation | None,
    locale: str,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
    http_status: int = 200,
) -> Response:
    values = form if form is not None else _translation_form(translation)
    body_format = values["body_format"] if values["body_format"] in BODY_FORMATS else "markdown"
    settings = settings_of(request)
    status = (
        intercom_status(article, translation, settings.intercom_article_author_id)
        if translation is not None
        else None
    )
    return render(
        request,
        "article_translation.html",
        http_status=http_status,
        viewer=viewer,
        article=article,
        translation=translation,
        locale=locale,
        locale_name=locales.LOCALES[locale],
        rtl=locale in locales.RIGHT_TO_LEFT,
        form=values,
        formats=BODY_FORMATS,
        preview_html=render_body(values["body"], body_format),
        public_url=f"{settings.base_url}/help/{locale}/{article.slug}",
        intercom=status,
        errors=errors or {},
        error=error,
        notice=notice,
    )


@router.get(BASE + "/{article_id}/translation")
async def pick_translation(request: Request, article_id: str) -> Response:
    """The locale picker's answer: that language's editor."""

    async def run(viewer: Viewer) -> Response:
        locale = request.query_params.get("locale") or ""
        code = locales.exact(locale) if len(locale) <= 16 else None
        if code is None:
            raise NotFound("Pick one of Intercom's help centre languages.")
        return back(f"{BASE}/{article_id}/translations/{code}")

    return await guarded(request, run, page=True)


@router.get(BASE + "/{article_id}/translations/{locale}")
async def translation_page(request: Request, article_id: str, locale: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        article, translation, code = await run_in_threadpool(
            _load_translation, request, article_id, locale
        )
        notice = TRANSLATION_NOTICES.get(request.query_params.get("notice") or "")
        return _translation_page(request, viewer, article, translation, code, notice=notice)

    return await guarded(request, run, page=True)


@router.post(BASE + "/{article_id}/translations/{locale}")
async def save_translation(request: Request, article_id: str, locale: str) -> Response:
    """Create or save the translation; its button says whether the state changes too."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        values = _translation_input(form)
        action = str(form.get("action") or "save")
        article, translation, code = await run_in_threadpool(
            _load_translation, request, article_id, locale
        )
        if action == "preview":
            return _translation_page(
                request,
                viewer,
                article,
                translation,
                code,
                form=values,
                notice="Preview: not saved yet.",
            )
        if action not in ACTIONS:
            action = "save"
        draft = TranslationDraft(
            title=values["title"],
            description=values["description"],
            body=values["body"],
            body_format=values["body_format"],
            state=ACTIONS[action],
        )
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                if translation is None:
                    service.create_translation(session, article_id, code, draft)
                else:
                    service.update_translation(session, article_id, code, draft)

        try:
            await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            errors, summary = _refused(exc)
            return _translation_page(
                request,
                viewer,
                article,
                translation,
                code,
                form=values,
                errors=errors,
                error=summary,
                http_status=422,
            )
        notice = draft.state or ("saved" if translation is not None else "created")
        return back(f"{BASE}/{article_id}/translations/{code}?notice={notice}")

    return await guarded(request, run, page=False)


@router.post(BASE + "/{article_id}/translations/{locale}/delete")
async def delete_translation(request: Request, article_id: str, locale: str) -> Response:
    return await _change_then_back(
        request,
        lambda session: service.delete_translation(session, article_id, locale),
        f"{BASE}/{article_id}?notice=translation-deleted",
    )


@router.post(BASE + "/{article_id}/intercom-retry")
async def retry_intercom(request: Request, article_id: str) -> Response:
    """Send to Intercom's help centre again now, without waiting for the back-off."""
    return await _change_then_back(
        request,
        lambda session: service.request_intercom(service.get_article(session, article_id)),
        f"{BASE}/{article_id}?notice=intercom-retry",
    )


# --- collections ---------------------------------------------------------------------------------

COLLECTIONS = "/inbox/article-collections"
COLLECTION_NOTICES = {
    "created": "Collection created.",
    "saved": "Collection saved.",
    "deleted": "Collection deleted; its articles are in no collection now.",
    "named": "Name saved.",
    "unnamed": "Name removed.",
}


def _position_of(value: object) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 8:
        raise invalid("position must be a whole number.", field="position")
    return int(text)


def _collections_context(request: Request) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        rows = list(collections.all_collections(session))
        counted: dict[str, int] = {}
        for collection_id in collections.member_ids(session).values():
            counted[collection_id] = counted.get(collection_id, 0) + 1
    return {"collections": rows, "counts": counted}


@router.get(COLLECTIONS)
async def collection_list(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        context = await run_in_threadpool(_collections_context, request)
        notice = COLLECTION_NOTICES.get(request.query_params.get("notice") or "")
        return render(
            request,
            "article_collections.html",
            viewer=viewer,
            notice=notice,
            errors={},
            form={},
            **context,
        )

    return await guarded(request, run, page=True)


@router.post(COLLECTIONS)
async def create_collection(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        values = {k: str(form.get(k) or "") for k in ("name", "description", "position")}
        db = db_of(request)

        def apply() -> str:
            with db.transaction() as session:
                position = _position_of(values["position"])
                return collections.create_collection(
                    session, values["name"], values["description"], position
                ).id

        try:
            await run_in_threadpool(apply)
        except Problem as exc:
            if isinstance(exc, (NotFound, Forbidden)):
                raise
            errors, summary = _refused(exc)
            context = await run_in_threadpool(_collections_context, request)
            return render(
                request,
                "article_collections.html",
                http_status=422,
                viewer=viewer,
                errors=errors,
                error=summary,
                form=values,
                notice=None,
                **context,
            )
        return back(f"{COLLECTIONS}?notice=created")

    return await guarded(request, run, page=False)


def _collection_context(request: Request, collection_id: str) -> dict[str, Any]:
    with db_of(request).read_session() as session:
        collection = collections.get(session, collection_id)
        names = list(collections.names(session, collection.id))
    taken = {n.locale for n in names} | {locales.DEFAULT}
    return {
        "collection": collection,
        "names": names,
        "locale_names": locales.LOCALES,
        "locale_choices": [(c, n) for c, n in locales.LOCALES.items() if c not in taken],
    }


def _collection_page(
    request: Request, viewer: Viewer, collection_id: str, **extra: Any
) -> Response:
    context = _collection_context(request, collection_id)
    extra.setdefault("errors", {})
    status = extra.pop("http_status", 200)
    return render(
        request, "article_collection.html", http_status=status, viewer=viewer, **context, **extra
    )


@router.get(COLLECTIONS + "/{collection_id}")
async def collection_page(request: Request, collection_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        notice = COLLECTION_NOTICES.get(request.query_params.get("notice") or "")
        return await run_in_threadpool(
            lambda: _collection_page(request, viewer, collection_id, notice=notice)
        )

    return await guarded(request, run, page=True)


@router.post(COLLECTIONS + "/{collection_id}")
async def save_collection(request: Request, collection_id: str) -> Response:
    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        values = {k: str(form.get(k) or "") for k in ("name", "description", "position")}
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                collections.update_collection(
                    session,
                    collection_id,
                    name=values["name"],
                    description=values["description"],
                    position=_position_of(values["position"]),
                )

        try:
            await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            errors, summary = _refused(exc)
            return await run_in_threadpool(
                lambda: _collection_page(
                    request, viewer, collection_id, errors=errors, error=summary, http_status=422
                )
            )
        return back(f"{COLLECTIONS}/{collection_id}?notice=saved")

    return await guarded(request, run, page=False)


@router.post(COLLECTIONS + "/{collection_id}/names")
async def name_collection(request: Request, collection_id: str) -> Response:
    """The collection's name and description in another language."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        values = {k: str(form.get(k) or "") for k in ("locale", "name", "description")}
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                collections.name_in(
                    session, collection_id, values["locale"], values["name"], values["description"]
                )

        try:
            await run_in_threadpool(apply)
        except (NotFound, Forbidden):
            raise
        except Problem as exc:
            errors, summary = _refused(exc)
            return await run_in_threadpool(
                lambda: _collection_page(
                    request, viewer, collection_id, errors=errors, error=summary, http_status=422
                )
            )
        return back(f"{COLLECTIONS}/{collection_id}?notice=named")

    return await guarded(request, run, page=False)


@router.post(COLLECTIONS + "/{collection_id}/names/{locale}/delete")
async def unname_collection(request: Request, collection_id: str, locale: str) -> Response:
    return await _change_then_back(
        request,
        lambda session: collections.remove_name_in(session, collection_id, locale),
        f"{COLLECTIONS}/{collection_id}?notice=unnamed",
    )


@router.post(COLLECTIONS + "/{collection_id}/delete")
async def delete_collection(request: Request, collection_id: str) -> Response:
    return await _change_then_back(
        request,
        lambda session: collections.delete_collection(session, collection_id),
        f"{COLLECTIONS}?notice=deleted",
    )


@router.post(BASE + "/{article_id}/collection")
async def move_to_collection(request: Request, article_id: str) -> Response:
    """Put the article in a collection, or in none."""

    async def run(viewer: Viewer) -> Response:
        form = await request.form()
        collection_id = str(form.get("collection_id") or "") or None
        db = db_of(request)

        def apply() -> None:
            with db.transaction() as session:
                collections.put_article(session, article_id, collection_id)

        await run_in_threadpool(apply)
        return back(f"{BASE}/{article_id}?notice=collection")

    return await guarded(request, run, page=False)
