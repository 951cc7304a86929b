"""What most of the inbox's HTTP tests start from: a live server on each backend, Fin's side
of it, an agent, and that agent signed in. A test file that needs another server defines its
own ``server``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.fin import World
from support.server import LiveServer
from web_support import Person, Web, new_agent, sign_in, start_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(request, request.param, tmp_path_factory.mktemp("inbox"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def me(server: LiveServer) -> Person:
    return new_agent(server, "Ada Agent")


@pytest.fixture(scope="module")
def web(server: LiveServer, me: Person) -> Iterator[Web]:
    signed_in = sign_in(server, me)
    yield signed_in
    signed_in.close()
