"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) are served from the
package, under a strict Content Security Policy, and render with no network beyond findesk."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from support.server import LiveServer, database_url

from findesk.apidocs import endpoints as apidocs
from findesk.inbox.endpoints import SECURITY_HEADERS as INBOX_HEADERS

PAGES = ("/docs", "/redoc")
REDOC_LOGO = "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"
WAIT_MS = 20_000  # the bundles are large and the machine is shared: passing runs take far less


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("apidocs")
    live = LiveServer(database_url("sqlite", request, tmp), {"data_dir": tmp}).start()
    yield live
    live.stop()


class Assets(HTMLParser):
    """What a page loads (scripts, stylesheets, images) and any inline script it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in found
            if found.get("src"):
                self.urls.append(str(found["src"]))
        elif tag in ("link", "img", "iframe", "source") and (found.get("href") or found.get("src")):
            self.urls.append(str(found.get("href") or found.get("src")))
        for name, value in attrs:
            assert not name.startswith("on"), f"inline event handler {name}={value}"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def directives(csp: str) -> dict[str, list[str]]:
    parsed = {}
    for part in csp.split(";"):
        if part.strip():
            name, *values = part.split()
            parsed[name] = values
    return parsed


@pytest.mark.parametrize("path", PAGES)
def test_the_page_loads_only_its_own_assets_under_a_strict_policy(
    server: LiveServer, path: str
) -> None:
    page = httpx.get(f"{server.base_url}{path}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
        assert page.headers[name] == INBOX_HEADERS[name], name
    csp = directives(page.headers["content-security-policy"])
    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in " ".join(csp.get("style-src", []))
    assert not any(source.startswith(("http", "https:")) for v in csp.values() for source in v)

    assets = Assets()
    assets.feed(page.text)
    assert assets.inline_scripts == []
    assert assets.urls, "the page loads nothing"
    for url in assets.urls:
        absolute = urljoin(f"{server.base_url}{path}", url)
        assert urlsplit(absolute).netloc == urlsplit(server.base_url).netloc, url
        served = httpx.get(absolute)
        assert served.status_code == 200, url
        assert served.headers["x-content-type-options"] == "nosniff"
        kind = served.headers["content-type"]
        assert kind.startswith(("text/javascript", "application/javascript", "text/css")), kind


def test_each_vendored_file_is_pinned_with_its_licence() -> None:
    static = Path(apidocs.__file__).parent / "static"
    notes = (static / "VENDORED.md").read_text()
    for name, version in apidocs.VENDORED.items():
        assert (static / name).is_file(), name
        assert version in notes, name
    for licence in ("swagger-ui-dist.LICENSE", "swagger-ui-dist.NOTICE", "redoc.LICENSE"):
        assert (static / licence).is_file(), licence


def test_only_the_listed_assets_are_served(server: LiveServer) -> None:
    for name in ("VENDORED.md", "..%2Fendpoints.py", "nothing.js"):
        assert httpx.get(f"{server.base_url}/docs/assets/{name}").status_code == 404, name
    # FastAPI's own pages, which pulled scripts from a CDN, are gone.
    assert httpx.get(f"{server.base_url}/docs/oauth2-redirect").status_code == 404


def test_the_redoc_page_gets_a_fresh_style_nonce(server: LiveServer) -> None:
    first, second = (httpx.get(f"{server.base_url}/redoc") for _ in range(2))
    nonces = []
    for page in (first, second):
        [nonce] = [
            s
            for s in directives(page.headers["content-security-policy"])["style-src"]
            if s.startswith("'nonce-")
        ]
        assert f'data-nonce="{nonce[7:-1]}"' in page.text
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


# --- in a browser with no way out ----------------------------------------------------------------


def offline_page(browser: Browser, server: LiveServer, left: list[str]) -> Page:
    """A page whose every request beyond findesk's own address is refused (and recorded), and
    which records every Content Security Policy violation."""
    context = browser.new_context()
    own = urlsplit(server.base_url).netloc

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));"
    )
    return page


def test_swagger_ui_renders_the_operations_offline(browser: Browser, server: LiveServer) -> None:
    left: list[str] = []
    page = offline_page(browser, server, left)
    try:
        page.goto(f"{server.base_url}/docs")
        operations = page.locator(".opblock")
        expect(operations.first).to_be_visible(timeout=WAIT_MS)
        assert operations.count() > 10
        expect(page.locator(".opblock-summary-path", has_text="/api/fin/").first).to_be_visible()
        # An operation opens, with its parameters: the UI works, not only its first paint.
        operations.first.locator(".opblock-summary").click()
        expect(page.locator(".opblock-body").first).to_be_visible()
        assert page.evaluate("window.__violations") == []
        assert left == []
    finally:
        page.context.close()


def test_redoc_renders_the_operations_offline(browser: Browser, server: LiveServer) -> None:
    left: list[str] = []
    page = offline_page(browser, server, left)
    try:
        page.goto(f"{server.base_url}/redoc")
        menu = page.locator("[role=menuitem]")
        expect(menu.first).to_be_visible(timeout=WAIT_MS)
        assert menu.count() > 10
        # Styled: the menu is laid out beside the content, not one unstyled column.
        expect(page.locator(".menu-content")).to_be_visible()
        width = page.evaluate("getComputedStyle(document.querySelector('.menu-content')).width")
        assert width != "auto" and float(width.removesuffix("px")) < 400
        # Search runs in a worker that ReDoc builds from a blob.
        page.get_by_placeholder("Search...").fill("token")
        found = page.locator("[data-role='search:results']")
        expect(found).to_contain_text("Issue an access token (client credentials grant)")
        # ReDoc's "API docs by Redocly" logo is hard-wired to its CDN: the policy blocks it before
        # any request is made, and ReDoc then hides the image. Nothing else may be refused.
        violations = page.evaluate("window.__violations")
        assert [v for v in violations if v != REDOC_LOGO] == []
        assert left == []
    finally:
        page.context.close()
