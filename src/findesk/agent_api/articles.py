"""``/api/v1/articles``: the knowledge base, for human agents. Thin: authenticate, call the
domain, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

from findesk.agent_api.security import agent_api_router, current_agent
from findesk.kit.errors import NotFound
from findesk.kit.http import db_of, settings_of
from findesk.knowledge import repository, service
from findesk.knowledge import schemas as s
from findesk.knowledge.markdown import render
from findesk.knowledge.models import Article, ArticleTranslation

router = agent_api_router(tag="Knowledge base", not_found="No such article.")


def _view(request: Request, article: Article) -> s.ArticleView:
    return s.ArticleView.of(article, settings_of(request).base_url)


@router.get("/articles", response_model=s.ArticlePage)
def list_articles(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, description="In the title or body.")] = None,
    state: s.State | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> s.ArticlePage:
    """Articles, most recently edited first."""
    with db_of(request).read_session() as session:
        rows = repository.search(session, query=q, state=state, limit=limit + 1, offset=offset)
        items = [_view(request, a) for a in rows[:limit]]
    next_offset = offset + limit if len(rows) > limit else None
    return s.ArticlePage(items=items, limit=limit, offset=offset, next_offset=next_offset)


@router.post("/articles", response_model=s.ArticleView, status_code=201)
def create_article(request: Request, response: Response, body: s.ArticleCreate) -> s.ArticleView:
    """A new article by the calling agent; published at once with `state: published`."""
    author_id = current_agent(request).id
    with db_of(request).transaction() as session:
        article = service.create_article(session, body.to_draft(), author_id)
        view = _view(request, article)
    response.headers["Location"] = f"/api/v1/articles/{view.id}"
    return view


@router.post("/articles/preview", response_model=s.PreviewOut)
def preview(body: s.PreviewIn) -> s.PreviewOut:
    """The sanitised HTML a body renders to, exactly as it would be shown; nothing is saved."""
    return s.PreviewOut(html=render(body.body, body.body_format))


@router.get("/articles/{article_id}", response_model=s.ArticleView)
def get_article(request: Request, article_id: str) -> s.ArticleView:
    with db_of(request).read_session() as session:
        article = repository.get(session, article_id)
        if article is None:
            raise NotFound(f"No article {article_id}.")
        return _view(request, article)


@router.patch("/articles/{article_id}", response_model=s.ArticleView)
def update_article(request: Request, article_id: str, body: s.ArticlePatch) -> s.ArticleView:
    """Only the fields given change."""
    if not body.model_fields_set:
        return get_article(request, article_id)
    with db_of(request).transaction() as session:
        article = service.update_article(session, article_id, body.to_draft())
        return _view(request, article)


@router.delete("/articles/{article_id}", status_code=204)
def delete_article(request: Request, article_id: str) -> Response:
    """Gone from findesk and its help centre; its page in Fin's library is deleted too."""
    with db_of(request).transaction() as session:
        service.delete_article(session, article_id)
    return Response(status_code=204)


@router.post("/articles/{article_id}/publish", response_model=s.ArticleView)
def publish_article(request: Request, article_id: str) -> s.ArticleView:
    """Show it in the help centre and send it to Fin (English articles only)."""
    with db_of(request).transaction() as session:
        return _view(request, service.publish(session, article_id))


@router.post("/articles/{article_id}/archive", response_model=s.ArticleView)
def archive_article(request: Request, article_id: str) -> s.ArticleView:
    """Take it out of the help centre and out of Fin's library; kept in findesk."""
    with db_of(request).transaction() as session:
        return _view(request, service.archive(session, article_id))


# --- translations ------------------------------------------------------------------------------


def _translation_view(
    request: Request, article: Article, translation: ArticleTranslation
) -> s.TranslationView:
    settings = settings_of(request)
    return s.TranslationView.of(
        article, translation, settings.base_url, settings.intercom_article_author_id
    )


@router.get("/articles/{article_id}/translations", response_model=s.TranslationList)
def list_translations(request: Request, article_id: str) -> s.TranslationList:
    """The article in other languages, by locale."""
    with db_of(request).read_session() as session:
        article = repository.get(session, article_id)
        if article is None:
            raise NotFound(f"No article {article_id}.")
        items = [
            _translation_view(request, article, t)
            for t in repository.translations(session, article.id)
        ]
    return s.TranslationList(items=items)


@router.post(
    "/articles/{article_id}/translations", response_model=s.TranslationView, status_code=201
)
def create_translation(
    request: Request, response: Response, article_id: str, body: s.TranslationCreate
) -> s.TranslationView:
    """The article in one more language; published at once with `state: published` (and then
    sent to Intercom's help centre through the Articles API)."""
    with db_of(request).transaction() as session:
        translation = service.create_translation(session, article_id, body.locale, body.to_draft())
        article = service.get_article(session, article_id)
        view = _translation_view(request, article, translation)
    response.headers["Location"] = f"/api/v1/articles/{article_id}/translations/{view.locale}"
    return view


@router.get("/articles/{article_id}/translations/{locale}", response_model=s.TranslationView)
def get_translation(request: Request, article_id: str, locale: str) -> s.TranslationView:
    with db_of(request).read_session() as session:
        translation = service.get_translation(session, article_id, locale)
        article = service.get_article(session, article_id)
        return _translation_view(request, article, translation)


@router.patch("/articles/{article_id}/translations/{locale}", response_model=s.TranslationView)
def update_translation(
    request: Request, article_id: str, locale: str, body: s.TranslationPatch
) -> s.TranslationView:
    """Only the fields given change; `state` publishes, archives or takes it back to draft."""
    with db_of(request).transaction() as session:
        translation = service.update_translation(session, article_id, locale, body.to_draft())
        article = service.get_article(session, article_id)
        return _translation_view(request, article, translation)


@router.delete("/articles/{article_id}/translations/{locale}", status_code=204)
def delete_translation(request: Request, article_id: str, locale: str) -> Response:
    """Gone from findesk, its help centre and Intercom's copy of the article."""
    with db_of(request).transaction() as session:
        service.delete_translation(session, article_id, locale)
    return Response(status_code=204)
