"""A small client of Intercom's AI Content API (spec 8): content import sources and external
pages, as the publisher needs them.

It rides out the rate limit itself: a 429 waits until ``X-RateLimit-Reset`` (Unix seconds;
``Retry-After`` or a short pause when absent) and tries again without counting a failure, and
when a response says the window is used up (``X-RateLimit-Remaining: 0``) the next request
waits for the reset instead of earning a 429. Transient failures (network, timeout, 408, 5xx)
are retried a few times with a short back-off; what remains is raised as ``ContentApiError``,
with ``transient`` saying whether a later try may succeed. Thread-safe: the publisher calls it
from several threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import httpx

from findesk import __version__

if TYPE_CHECKING:
    from findesk.kit.db import Database
    from findesk.kit.settings import Settings

PER_PAGE = 150  # the most the API lists at once
MAX_RATE_LIMIT_WAITS = 100  # consecutive 429s for one request before it counts as failed
DEFAULT_RATE_LIMIT_WAIT = 2.0  # when a 429 says neither when the window resets nor Retry-After
RESET_MARGIN = 0.01  # seconds past the reset, so that the request falls in the new window


class ContentApiError(Exception):
    """A request that did not succeed. ``status`` is None for network failures."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field
        self.transient = transient

    @property
    def unauthorized(self) -> bool:
        """The token is refused: every request will fail the same way."""
        return self.status in (401, 403)


class Stopped(Exception):
    """The client was asked to stop while it waited (the rate limit or a back-off)."""


@dataclass
class ApiStats:
    requests: int = 0  # HTTP requests sent (429s and failed ones included)
    rate_limited: int = 0  # 429 responses met
    paced: int = 0  # waits for a used-up window before sending (429s avoided)
    waited_seconds: float = 0.0  # spent waiting for the rate limit


class ContentApiClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        version: str,
        *,
        timeout: float = 15.0,
        attempts: int = 4,
        backoff: Sequence[float] = (0.5, 1.0, 2.0),
        max_wait: float = 60.0,
        pace: bool = True,
        stop: threading.Event | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.stats = ApiStats()
        self._attempts = max(1, attempts)
        self._backoff = tuple(backoff) or (0.5,)
        self._max_wait = max_wait
        self._pace = pace
        self._stop = stop or threading.Event()
        self._clock = clock
        self._lock = threading.Lock()
        self._window_opens_at = 0.0  # Unix time before which the window is known used up
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Intercom-Version": version,
                "Accept": "application/json",
                "User-Agent": f"findesk/{__version__}",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # --- content import sources ---------------------------------------------------------------

    def list_sources(self) -> Iterator[dict[str, Any]]:
        return self._list("/ai/content_import_sources")

    def create_source(self, url: str, sync_behavior: str = "api") -> dict[str, Any]:
        return self._json(
            self.request(
                "POST", "/ai/content_import_sources", {"url": url, "sync_behavior": sync_behavior}
            )
        )

    def get_source(self, source_id: int) -> dict[str, Any] | None:
        """The source, or None when it does not exist (404)."""
        try:
            return self._json(self.request("GET", f"/ai/content_import_sources/{source_id}"))
        except ContentApiError as exc:
            if exc.status == 404:
                return None
            raise

    def update_source(self, source_id: int, url: str, sync_behavior: str = "api") -> dict[str, Any]:
        """Change a source's URL (an ``api`` source's only)."""
        return self._json(
            self.request(
                "PUT",
                f"/ai/content_import_sources/{source_id}",
                {"url": url, "sync_behavior": sync_behavior},
            )
        )

    def delete_source(self, source_id: int) -> bool:
        """Delete a source and its pages; False when it was already gone (404 counts as done)."""
        try:
            self.request("DELETE", f"/ai/content_import_sources/{source_id}")
        except ContentApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- external pages -----------------------------------------------------------------------

    def upsert_page(self, page: dict[str, Any]) -> dict[str, Any]:
        """Create or update the page with this (source_id, external_id)."""
        return self._json(self.request("POST", "/ai/external_pages", page))

    def delete_page(self, page_id: str) -> bool:
        """Delete a page; False when it was already gone (404 counts as done)."""
        try:
            self.request("DELETE", f"/ai/external_pages/{page_id}")
        except ContentApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_pages(self) -> Iterator[dict[str, Any]]:
        return self._list("/ai/external_pages")

    # --- help centre articles (Articles API) ------------------------------------------------

    def create_article(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.request("POST", "/articles", body))

    def update_article(self, article_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self.request("PUT", f"/articles/{article_id}", body))

    def delete_article(self, article_id: str) -> bool:
        """Delete an article; False when it was already gone (404 counts as done)."""
        try:
            self.request("DELETE", f"/articles/{article_id}")
        except ContentApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- plumbing -----------------------------------------------------------------------------

    def _list(self, path: str) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = self._json(
                self.request("GET", path, params={"page": page, "per_page": PER_PAGE})
            )
            yield from body.get("data") or []
            total_pages = (body.get("pages") or {}).get("total_pages") or 0
            if page >= total_pages:
                return
            page += 1

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ContentApiError(
                f"HTTP {response.status_code}: the answer is not a JSON object",
                status=response.status_code,
            )
        return body

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        *,
        retry: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send until it succeeds (2xx), waiting out 429s; raises ContentApiError or Stopped.

        ``retry=False``: a transient failure (network, timeout, 408, 5xx) is raised at once, not
        retried, for a request that must not be repeated blindly (a create that may have been
        done before the answer was lost). A 429 is still waited out: it was not done. ``headers``
        are sent besides the client's own (e.g. another ``Accept``)."""
        attempts = self._attempts if retry else 1
        failures = 0
        rate_limited = 0
        while True:
            self._wait_for_window()
            try:
                response = self._http.request(
                    method, path, json=body, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                self._count(rate_limited=False)
                kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network"
                error = ContentApiError(f"{kind}: {type(exc).__name__}: {exc}", transient=True)
                failures += 1
                if failures >= attempts:
                    raise error from exc
                self._pause(self._backoff[min(failures, len(self._backoff)) - 1])
                continue
            status = response.status_code
            self._count(rate_limited=status == 429)
            self._note_window(response)
            if status == 429:
                rate_limited += 1
                if rate_limited > MAX_RATE_LIMIT_WAITS:
                    raise _error(response, transient=True)
                self._pause(self._rate_limit_wait(response, rate_limited), rate_limit=True)
                continue
            if 200 <= status < 300:
                return response
            if status == 408 or status >= 500:
                failures += 1
                if failures >= attempts:
                    raise _error(response, transient=True)
                self._pause(self._backoff[min(failures, len(self._backoff)) - 1])
                continue
            raise _error(response, transient=False)

    def _count(self, *, rate_limited: bool) -> None:
        with self._lock:
            self.stats.requests += 1
            if rate_limited:
                self.stats.rate_limited += 1

    def _note_window(self, response: httpx.Response) -> None:
        """Remember when a used-up window reopens, so that the next request waits for it."""
        if not self._pace or response.headers.get("x-ratelimit-remaining", "").strip() != "0":
            return
        reset = _number(response.headers.get("x-ratelimit-reset"))
        if reset is not None:
            with self._lock:
                self._window_opens_at = max(self._window_opens_at, reset)

    def _wait_for_window(self) -> None:
        if self._stop.is_set():
            raise Stopped
        with self._lock:
            opens_at = self._window_opens_at
        seconds = opens_at - self._clock()
        if seconds > 0:
            with self._lock:
                self.stats.paced += 1
            self._pause(min(seconds + RESET_MARGIN, self._max_wait), rate_limit=True)

    def _rate_limit_wait(self, response: httpx.Response, streak: int) -> float:
        """Until the window resets, bounded; never less than a pause that grows with the streak,
        so that a clock running ahead of Intercom's does not turn into a burst of 429s."""
        floor = min(5.0, 0.1 * 2.0 ** (streak - 1))
        reset = _number(response.headers.get("x-ratelimit-reset"))
        if reset is not None:
            wait = reset - self._clock() + RESET_MARGIN
        else:
            retry_after = _number(response.headers.get("retry-after"))
            wait = DEFAULT_RATE_LIMIT_WAIT if retry_after is None else retry_after
        return min(self._max_wait, max(floor, wait))

    def _pause(self, seconds: float, *, rate_limit: bool = False) -> None:
        if rate_limit:
            with self._lock:
                self.stats.waited_seconds += seconds
        if self._stop.wait(max(0.0, seconds)):
            raise Stopped


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _error(response: httpx.Response, *, transient: bool) -> ContentApiError:
    """From Intercom's ``error.list`` body when there is one."""
    code = message = field = None
    try:
        body = response.json()
        first = body["errors"][0]
        code, message, field = first.get("code"), first.get("message"), first.get("field")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        message = response.text[:200] or response.reason_phrase
    described = f"HTTP {response.status_code}"
    if code:
        described += f" {code}"
    if message:
        described += f": {message}"
    if field:
        described += f" (field {field})"
    return ContentApiError(
        described,
        status=response.status_code,
        code=code if isinstance(code, str) else None,
        field=field if isinstance(field, str) else None,
        transient=transient,
    )


class IntercomJob:
    """What the jobs that keep Intercom in step share (the knowledge publisher, the connector
    sync, the object mirror): the access-token check, one HTTP client that honours ``stop()``,
    and closing it. ``purpose`` names the job in the missing-token error; ``version`` is the
    ``Intercom-Version`` it sends (None: the configured one)."""

    purpose = "talking to Intercom"
    version: str | None = None

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
        pace: bool = True,
        timeout: float = 15.0,
        max_rate_limit_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = settings.intercom_access_token
        if token is None:
            raise ValueError(f"{self.purpose} needs FINDESK_INTERCOM_ACCESS_TOKEN")
        self.db = db
        self.settings = settings
        self._stop = threading.Event()
        self.client = ContentApiClient(
            settings.intercom_api_base,
            token.get_secret_value(),
            self.version or settings.intercom_version,
            timeout=timeout,
            attempts=len(retry_delays) + 1,
            backoff=retry_delays or (0.5,),
            max_wait=max_rate_limit_wait,
            pace=pace,
            stop=self._stop,
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def stop(self) -> None:
        """Make the pass in progress (and any later one) end at the next request or wait."""
        self._stop.set()
