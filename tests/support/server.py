"""A real findesk server on loopback, in a thread of the test process."""

from __future__ import annotations

import itertools
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from findesk.agents.service import create_agent, ensure_fin_agent
from findesk.app import create_app
from findesk.auth.service import create_agent_token, create_client
from findesk.fin_api.client import FinApiClient, Variant
from findesk.kit.db import Database
from findesk.kit.serving import server_config
from findesk.kit.settings import Settings
from findesk.migrations import upgrade
from support.fin import World
from support.postgres import PostgresServer

_db_names = itertools.count()


def database_url(backend: str, request: pytest.FixtureRequest, tmp_dir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / f'findesk-{uuid.uuid4().hex[:8]}.db'}"
    pg: PostgresServer = request.getfixturevalue("pg_server")
    return pg.create_database(f"findesk_{next(_db_names)}_{uuid.uuid4().hex[:6]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """Migrates ``database_url``, seeds the Fin bot and serves the app until ``stop()``."""

    database_url: str
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    _clients: list[httpx.Client] = field(default_factory=list, init=False, repr=False)

    def start(self) -> LiveServer:
        upgrade(self.database_url)
        self.port = free_port()
        overrides = {"public_base_url": f"http://127.0.0.1:{self.port}", **self.settings_overrides}
        self.settings = Settings(database_url=self.database_url, **overrides)
        self.db = Database(self.database_url)
        with self.db.transaction() as session:
            self.fin_agent_id = ensure_fin_agent(session, self.settings.fin_agent_email).id
        # The configuration `findesk serve` uses, read timeouts included.
        self.app = create_app(self.settings, self.db)
        config = server_config(
            self.app,
            self.settings,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        started = threading.Event()
        # uvicorn sets .started once it listens; wait on it without sleeping blindly.
        for _ in range(2000):
            if self._server.started:
                started.set()
                break
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.005)
        if not started.is_set():
            raise RuntimeError("findesk test server did not start")
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.db.dispose()

    # --- credentials ------------------------------------------------------------------------

    def new_oauth_client(self, name: str = "fin") -> tuple[str, str]:
        with self.db.transaction() as session:
            client, secret = create_client(session, name)
            return client.id, secret

    def fin_token(self) -> str:
        client_id, secret = self.new_oauth_client()
        response = httpx.post(
            f"{self.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def agent_http(self, email: str, name: str = "Agent") -> httpx.Client:
        """An HTTP client of the agent API as a new human agent (its id in ``.agent_id``)."""
        agent_id, token = self.new_agent(email, name)
        client = httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        client.agent_id = agent_id  # type: ignore[attr-defined]
        return client

    def fin_world(self, variant: Variant = "rest") -> World:
        """Fin, calling this server's Fin API with a fresh token (closed when it stops)."""
        http = httpx.Client(
            base_url=f"{self.base_url}/api/fin",
            headers={"Authorization": f"Bearer {self.fin_token()}"},
            timeout=30,
        )
        self._clients.append(http)
        return World(FinApiClient(http, variant), self.fin_agent_id)

    def new_agent(self, email: str, name: str = "Agent") -> tuple[str, str]:
        """Create a human agent; returns (agent_id, personal token)."""
        with self.db.transaction() as session:
            agent = create_agent(session, email=email, name=name)
            return agent.id, create_agent_token(session, agent)
