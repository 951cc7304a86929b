"""``/rate/{token}``: the public rating page a rating request links to. No sign-in: the
unguessable token in the path is the only key (so no CSRF token either: there is no session to
ride on). A plain form, no scripts; the rating is recorded only on POST (mail scanners and link
previews follow links with GET)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from findesk.csat import service
from findesk.kit.errors import Conflict, Invalid, NotFound
from findesk.kit.http import db_of

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

CSS_PATH = "/rate/static/rate.css"
TOKEN_MAX = 100  # findesk's tokens are 48 characters; anything much longer is not one
SCORE_LABELS = {1: "Very poor", 2: "Poor", 3: "OK", 4: "Good", 5: "Excellent"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # The token is in the path: never hand it to another site.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}
ALREADY = "You have rated this conversation already."


def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("state", "form")
    context.setdefault("error", None)
    context.setdefault("score", None)
    context.setdefault("comment", "")
    context["css_path"] = CSS_PATH
    context["labels"] = SCORE_LABELS
    context["comment_max"] = service.COMMENT_MAX
    response = templates.TemplateResponse(request, "rate.html", context, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def _not_found(request: Request) -> HTMLResponse:
    return _page(request, 404, state="not_found")


def _preselected(value: str | None) -> int | None:
    try:
        score = int(value or "")
    except ValueError:
        return None
    return score if score in service.SCORES else None


@router.get("/rate/static/rate.css")
def rate_css() -> Response:
    return Response(
        (HERE / "static" / "rate.css").read_bytes(),
        media_type="text/css",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"},
    )


@router.get("/rate/{token}", response_class=HTMLResponse)
def rate_page(request: Request, token: str) -> Response:
    """The form (``?score=N`` picks a score beforehand), or a thank-you once rated. Never
    records anything."""
    if len(token) > TOKEN_MAX:
        return _not_found(request)
    with db_of(request).read_session() as session:
        try:
            found = service.find(session, token)
        except NotFound:
            return _not_found(request)
    if found.score is not None:
        return _page(request, state="already", score=found.score)
    return _page(request, score=_preselected(request.query_params.get("score")))


@router.post("/rate/{token}", response_class=HTMLResponse)
async def rate_submit(request: Request, token: str) -> Response:
    """Record the rating: once (a second is 409 and changes nothing); a score out of 1 to 5 or a
    comment too long is 400 with the form again, as it was filled in."""
    if len(token) > TOKEN_MAX:
        return _not_found(request)
    form = await request.form()
    raw_score, raw_comment = form.get("score"), form.get("comment")
    score_text = raw_score if isinstance(raw_score, str) else None
    comment_text = raw_comment if isinstance(raw_comment, str) else None
    db = db_of(request)

    def apply() -> service.RatingPage:
        with db.transaction() as session:
            found = service.find(session, token)
            if found.score is not None:
                raise Conflict(ALREADY)
            score = service.checked_score(score_text)
            comment = service.checked_comment(comment_text)
            return service.rate(session, token, score, comment)

    try:
        rated = await run_in_threadpool(apply)
    except NotFound:
        return _not_found(request)
    except Conflict:
        return _page(request, 409, state="already")
    except Invalid as exc:
        return _page(
            request,
            400,
            error=exc.detail,
            score=_preselected(score_text),
            comment=(comment_text or "")[: service.COMMENT_MAX * 2],
        )
    return _page(request, state="thanks", score=rated.score)
