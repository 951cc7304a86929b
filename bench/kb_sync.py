"""Benchmark of publishing the knowledge base to Fin's Content Library under Intercom's rate limit.

Run: ``.venv/bin/python bench/kb_sync.py [--articles N] [--rate-limit R] [--window S] [--json]``

What it does:

1. Serves the Fin emulator's AI Content API on 127.0.0.1 (uvicorn in a thread of this process),
   with Intercom's rate limit by default: 167 requests per 10-second window, fixed windows
   aligned to the epoch, 429 with ``X-RateLimit-Reset`` beyond. A tap in front of it records
   every response: its status and the window it was counted in (its ``X-RateLimit-Reset``).
2. Creates N published articles (default 5,000) in a temporary SQLite findesk database,
   through the article actions as an author would.
3. Runs one full sync with findesk's publisher (``findesk kb sync --full`` does the same) and
   times it.
4. Reports the time, the requests, the 429s met, the pages in the library (must equal N) and
   the busiest window against the limit (must not exceed it). The rate limit makes this take
   about N / limit * window seconds (5 minutes by default): that is the point.

Exit status: 0 when every page is there once and the limit held, 1 otherwise, 2 when the set-up
failed, 130 when interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import math
import platform
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from findesk.emulator.content_api import create_content_api, store_of
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.knowledge.publisher import Publisher, SyncSummary
from findesk.knowledge.service import ArticleDraft, create_article
from findesk.migrations import upgrade

from benchkit import SetupError, bench_folder, finish, free_port, log, run_main

TOKEN = "bench-content-token"  # the emulator's, on loopback
PUBLIC_BASE_URL = "https://help.example.com"
STARTUP_TIMEOUT = 10.0


# --- the emulated AI Content API, tapped --------------------------------------------------------


@dataclass
class Tap:
    """Status and rate-limit window of every response the emulator sends."""

    statuses: Counter[int] = field(default_factory=Counter)
    accepted_by_window: Counter[str] = field(default_factory=Counter)  # X-RateLimit-Reset
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, reset: str | None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status != 429 and reset is not None:
                self.accepted_by_window[reset] += 1


class TapMiddleware:
    def __init__(self, app: Any, tap: Tap) -> None:
        self.app = app
        self.tap = tap

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                reset = headers.get(b"x-ratelimit-reset")
                self.tap.record(message["status"], reset.decode() if reset else None)
            await send(message)

        await self.app(scope, receive, recording)


class ContentLibrary:
    """The AI Content API emulator served on loopback until ``stop()``."""

    def __init__(self, db_path: Path, rate_limit: int, window: float) -> None:
        self.app = create_content_api(f"sqlite:///{db_path}", [TOKEN], rate_limit, window)
        self.tap = Tap()
        self.app.add_middleware(TapMiddleware, tap=self.tap)
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise SetupError("the AI Content API emulator did not start")
            time.sleep(0.01)

    def page_count(self) -> tuple[int, int]:
        """Pages in the library, and how many distinct external ids they have."""
        pages, total = store_of(self.app).list_pages(0, 10**9)
        assert len(pages) == total
        return total, len({(p.source_id, p.external_id) for p in pages})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- seeding --------------------------------------------------------------------------------------


def seed(db: Database, count: int) -> None:
    """``count`` published articles, through the article actions, a thousand per transaction."""
    body = (
        "## Steps\n\n1. Open **Settings**.\n2. Choose *Security*.\n3. Follow the link we send.\n\n"
        "Still stuck? [Write to us](https://example.com/contact)."
    )
    for start in range(0, count, 1000):
        with db.transaction() as session:
            for n in range(start, min(count, start + 1000)):
                draft = ArticleDraft(
                    title=f"How to do thing {n:05d}",
                    body=f"{body}\n\nArticle {n}.",
                    state="published",
                )
                create_article(session, draft, None)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Report:
    articles: int
    rate_limit: int
    window: float
    concurrency: int
    seconds: float = 0.0
    summary: SyncSummary | None = None
    responses: dict[int, int] = field(default_factory=dict)
    pages: int = 0
    distinct_pages: int = 0
    windows: int = 0
    peak_per_window: int = 0

    @property
    def requests_seen(self) -> int:
        return sum(self.responses.values())

    @property
    def too_many(self) -> int:
        return self.responses.get(429, 0)

    @property
    def fewest_windows(self) -> int:
        """Windows the accepted requests need at the very least under the limit."""
        return math.ceil((self.requests_seen - self.too_many) / self.rate_limit)

    @property
    def ok(self) -> bool:
        return (
            self.summary is not None
            and self.summary.ok
            and self.pages == self.distinct_pages == self.articles
            and self.peak_per_window <= self.rate_limit
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "python": platform.python_version(),
            "articles": self.articles,
            "rate_limit": {"requests": self.rate_limit, "window_seconds": self.window},
            "concurrency": self.concurrency,
            "elapsed_seconds": round(self.seconds, 2),
            "summary": None if self.summary is None else self.summary.to_dict(),
            "responses_by_status": {str(k): v for k, v in sorted(self.responses.items())},
            "requests_seen_by_emulator": self.requests_seen,
            "rate_limited_429": self.too_many,
            "pages_in_library": self.pages,
            "distinct_pages": self.distinct_pages,
            "windows": self.windows,
            "fewest_windows": self.fewest_windows,
            "peak_requests_per_window": self.peak_per_window,
            "ok": self.ok,
        }


def run(options: argparse.Namespace, tmp: Path, report: Report) -> None:
    library = ContentLibrary(tmp / "content.db", options.rate_limit, options.window)
    library.start()
    try:
        url = f"sqlite:///{tmp / 'findesk.db'}"
        upgrade(url)
        db = Database(url)
        try:
            log(f"creating {options.articles} published articles ...")
            started = time.perf_counter()
            seed(db, options.articles)
            log(f"  done in {time.perf_counter() - started:.1f} s")
            settings = Settings(
                database_url=url,
                data_dir=tmp,
                intercom_access_token=TOKEN,
                intercom_api_url=library.base_url,
                public_base_url=PUBLIC_BASE_URL,
            )
            expected = math.ceil(options.articles / options.rate_limit) * options.window
            log(f"full sync (the rate limit alone makes it take about {expected:.0f} s) ...")
            shown = [0.0]

            def progress(done: int, total: int) -> None:
                now = time.perf_counter()
                if now - shown[0] >= 15 or (total and done == total):
                    shown[0] = now
                    log(f"  {done}/{total} articles after {now - started:.0f} s")

            with Publisher(db, settings, concurrency=options.concurrency) as publisher:
                started = time.perf_counter()
                report.summary = publisher.sync(full=True, progress=progress)
                report.seconds = time.perf_counter() - started
        finally:
            db.dispose()
        with library.tap.lock:
            report.responses = dict(library.tap.statuses)
            windows = dict(library.tap.accepted_by_window)
        report.windows = len(windows)
        report.peak_per_window = max(windows.values(), default=0)
        report.pages, report.distinct_pages = library.page_count()
    finally:
        library.stop()


def print_report(report: Report) -> None:
    summary = report.summary
    assert summary is not None
    limit = f"{report.rate_limit} per {report.window:g} s"
    print(f"findesk kb sync benchmark (Python {platform.python_version()})")
    print(f"  articles                {report.articles}")
    print(f"  elapsed                 {report.seconds:.1f} s")
    print(
        f"  requests                {summary.requests} sent, {report.requests_seen} seen by "
        f"the emulator"
    )
    print(
        f"  429 responses met       {report.too_many}   (waits for a used-up window instead: "
        f"{summary.paced})"
    )
    print(f"  outcome                 {summary.describe()}")
    print(
        f"  pages in the library    {report.pages}   (distinct: {report.distinct_pages}; "
        f"must equal {report.articles})"
    )
    print(f"  peak per window         {report.peak_per_window}   (limit {limit})")
    print(
        f"  windows used            {report.windows}   (at least {report.fewest_windows} "
        f"under the limit)"
    )
    print(f"\n{'PASS' if report.ok else 'FAIL'}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=5000, help="published articles (5000)")
    parser.add_argument(
        "--rate-limit", type=int, default=167, help="requests per window, as Intercom (167)"
    )
    parser.add_argument("--window", type=float, default=10.0, help="window in seconds (10)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="publisher requests in flight (4)"
    )
    parser.add_argument("--json", dest="as_json", action="store_true", help="print one JSON object")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    options = parse_args(argv)
    report = Report(options.articles, options.rate_limit, options.window, options.concurrency)
    with bench_folder() as tmp:
        run(options, tmp, report)
    return finish(report.ok, options.as_json, report.to_json, lambda: print_report(report))


if __name__ == "__main__":
    run_main(main)
