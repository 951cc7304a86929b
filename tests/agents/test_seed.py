"""Seeding the bot that represents Fin is safe when several processes start at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from support.server import database_url

from findesk.agents.models import Agent
from findesk.agents.service import ensure_fin_agent
from findesk.kit.db import Database
from findesk.migrations import upgrade


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_starts_seed_one_fin_agent(backend, request, tmp_path) -> None:
    url = database_url(backend, request, tmp_path)
    upgrade(url)
    starts = 8
    barrier = threading.Barrier(starts)

    def start() -> str:
        db = Database(url)  # each "process" with its own engine and connections
        try:
            barrier.wait()
            with db.transaction() as session:
                return ensure_fin_agent(session, "Fin@findesk.invalid").id
        finally:
            db.dispose()

    with ThreadPoolExecutor(starts) as pool:
        ids = set(pool.map(lambda _: start(), range(starts)))
    assert len(ids) == 1
    db = Database(url)
    with db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Agent)) == 1
    db.dispose()
