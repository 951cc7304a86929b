"""What the routing tests share: Fin's side, an admin of the agent API, and rules removed after
each test that asks. Each module starts its own ``server``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from routing_support import agent_client, ok
from support.fin import World
from support.server import LiveServer


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with agent_client(server, "Admin", admin=True) as client:
        yield client


@pytest.fixture
def clean_rules(admin: httpx.Client) -> Iterator[None]:
    """Each test writes its own rules; none is left for the next."""
    yield
    for rule in ok(admin.get("/routing-rules")):
        ok(admin.delete(f"/routing-rules/{rule['id']}"), 204)
