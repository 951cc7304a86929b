"""Fixtures: a live findesk server on SQLite and on a throwaway PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from support.browser import launch_browser
from support.postgres import PostgresServer, require_postgres
from support.receiver import Receiver
from support.server import LiveServer, database_url


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = require_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One live server per test module and backend; tests make their own data in it."""
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    live = LiveServer(url).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def fin(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client that calls the Fin API as Fin does, with a valid bearer token."""
    with httpx.Client(
        base_url=f"{server.base_url}/api/fin",
        headers={"Authorization": f"Bearer {server.fin_token()}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def agent_client(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the agent API, as a human agent."""
    with server.agent_http(f"agent-{uuid.uuid4().hex[:6]}@example.com", "Ada Agent") as client:
        yield client


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``), shared by the whole run."""
    yield from launch_browser()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A stand-in for Fin's webhook on loopback (see ``notifier_settings``)."""
    fake_fin = Receiver().accept()
    yield fake_fin
    fake_fin.close()
