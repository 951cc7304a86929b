"""``FINDESK_REQUEST_THREADS`` sizes the pool where a process runs its sync endpoints: few
threads cost far less CPU a request under the GIL than anyio's 40 (see bench/http_vs_bare.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from anyio import to_thread

from findesk.app import create_app
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.migrations import upgrade


def pool_size_while_serving(settings: Settings, db: Database) -> float:
    app = create_app(settings, db)

    async def serve() -> float:
        async with app.router.lifespan_context(app):
            return to_thread.current_default_thread_limiter().total_tokens

    # A thread of its own: a browser test earlier in the run may have left an event loop
    # running on this one, and asyncio.run refuses to start a second.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(serve())).result()


def test_the_pool_has_as_many_threads_as_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    try:
        assert Settings(database_url=url).request_threads == 3
        assert pool_size_while_serving(Settings(database_url=url), db) == 3
        assert pool_size_while_serving(Settings(database_url=url, request_threads=7), db) == 7
    finally:
        db.dispose()
