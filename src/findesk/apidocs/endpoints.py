"""The API documentation pages: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

FastAPI's own pages load unpinned scripts from a public CDN with inline scripts, so they are
blank offline and cannot run under a strict policy. These serve pinned copies from the package
(``static/VENDORED.md``), start them from served files, and carry the inbox's security headers
with ``script-src 'self'``.
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from findesk import __version__
from findesk.inbox.endpoints import SECURITY_HEADERS as PAGE_HEADERS

STATIC = Path(__file__).parent / "static"
ASSETS = "/docs/assets"
# Vendored file -> its upstream version (see static/VENDORED.md); the version in the page's URL
# makes browsers fetch an upgraded copy at once.
VENDORED = {
    "swagger-ui-bundle.js": "5.35.0",
    "swagger-ui.css": "5.35.0",
    "redoc.standalone.js": "2.5.4",
}
OWN = {"swagger-init.js": __version__, "redoc-init.js": __version__}
SERVED = {**VENDORED, **OWN}
# ReDoc 2.5.4 inserts two <style> elements while its bundle loads, before it is given the nonce:
# perfect-scrollbar's stylesheet and an empty one. Allowed by their hashes (re-check on upgrade:
# tests/apidocs records every policy violation in Chromium).
REDOC_LOAD_STYLES = (
    "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
)

router = APIRouter(include_in_schema=False)


def _policy(style_src: str, *extra: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            "img-src 'self' data:",
            "script-src 'self'",
            f"style-src {style_src}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            *extra,
        )
    )


def _asset(request: Request, name: str) -> str:
    return html.escape(f"{request.scope.get('root_path', '')}{ASSETS}/{name}?v={SERVED[name]}")


def _page(request: Request, policy: str, head: str, body: str) -> HTMLResponse:
    title = html.escape(f"{request.app.title} API")
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
    headers = {**PAGE_HEADERS, "Content-Security-Policy": policy, "Cache-Control": "no-store"}
    return HTMLResponse(page, headers=headers)


def _openapi_url(request: Request) -> str:
    return html.escape(f"{request.scope.get('root_path', '')}{request.app.openapi_url}")


@router.get("/docs")
def swagger_ui(request: Request) -> Response:
    return _page(
        request,
        _policy("'self'"),
        f'<link rel="stylesheet" href="{_asset(request, "swagger-ui.css")}">\n',
        f'<div id="swagger-ui" data-openapi-url="{_openapi_url(request)}"></div>\n'
        f'<script src="{_asset(request, "swagger-ui-bundle.js")}"></script>\n'
        f'<script src="{_asset(request, "swagger-init.js")}"></script>\n',
    )


@router.get("/redoc")
def redoc(request: Request) -> Response:
    # ReDoc writes its styles into <style> elements at run time: only those with this
    # response's nonce (or a known hash) apply. Its search runs in a worker built from a blob.
    nonce = secrets.token_urlsafe(18)
    return _page(
        request,
        _policy(" ".join(("'self'", f"'nonce-{nonce}'", *REDOC_LOAD_STYLES)), "worker-src blob:"),
        "",
        f'<div id="redoc" data-openapi-url="{_openapi_url(request)}" data-nonce="{nonce}"></div>\n'
        f'<script src="{_asset(request, "redoc.standalone.js")}"></script>\n'
        f'<script src="{_asset(request, "redoc-init.js")}"></script>\n',
    )


@router.get(ASSETS + "/{name}")
def asset(name: str) -> Response:
    if name not in SERVED:
        return Response("Not found.", status_code=404, media_type="text/plain")
    media_type = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(
        STATIC / name,
        media_type=f"{media_type}; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400"},
    )
