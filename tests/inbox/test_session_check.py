"""Every inbox page, fragment and live check first finds who is signed in. That is a read: it
takes the write lock only when the session's idle timeout is due to slide (once a minute), so a
page is not queued behind the writes of Fin and the other agents (on SQLite, one at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from support.server import LiveServer
from web_support import new_agent, sign_in, start_server

from findesk.auth.models import WebSession
from findesk.kit.timeutil import as_utc, utcnow


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, "sqlite", tmp_path_factory.mktemp("session-check"))
    yield live
    live.stop()


def last_seen(server: LiveServer, session_id_hash: str) -> object:
    with server.db.read_session() as session:
        seen = session.scalar(
            select(WebSession.last_seen_at).where(WebSession.id_hash == session_id_hash)
        )
        assert seen is not None
        return as_utc(seen)


def test_a_page_is_served_while_a_write_holds_the_lock(server: LiveServer) -> None:
    web = sign_in(server, new_agent(server, "Rhea Reader"))
    try:
        with server.db.transaction() as session:
            session.connection()  # BEGIN IMMEDIATE: SQLite's write lock, and this process's
            response = web.http.get("/inbox", params={"queue": "all"}, timeout=10)
            assert response.status_code == 200, response.text[:300]
            assert "Rhea Reader" in response.text
    finally:
        web.close()


def test_the_idle_timeout_still_slides_once_a_minute(server: LiveServer) -> None:
    sol = new_agent(server, "Sol Slider")
    web = sign_in(server, sol)
    try:
        with server.db.read_session() as session:
            [id_hash] = session.scalars(
                select(WebSession.id_hash).where(WebSession.agent_id == sol.id)
            ).all()
        long_ago = utcnow() - timedelta(minutes=5)
        with server.db.transaction() as session:
            session.execute(
                update(WebSession)
                .where(WebSession.id_hash == id_hash)
                .values(last_seen_at=long_ago)
            )
        assert web.get("/inbox").status_code == 200
        slid = last_seen(server, id_hash)
        assert slid > long_ago + timedelta(minutes=4)
        assert web.get("/inbox").status_code == 200  # within the minute: not written again
        assert last_seen(server, id_hash) == slid
    finally:
        web.close()
