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
from findesk.knowledge.models import Article

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
