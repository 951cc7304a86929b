from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support.receiver import Receiver, notifier_settings
from support.server import LiveServer, database_url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def notified(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[LiveServer]:
    """A live server whose in-process notifier delivers to ``receiver``."""
    url = database_url(request.param, request, tmp_path_factory.mktemp("db"))
    live = LiveServer(url, notifier_settings(receiver)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def agent(notified: LiveServer) -> Iterator[object]:
    with notified.agent_http(f"agent-{uuid.uuid4().hex[:6]}@example.com", "Nia Notifier") as c:
        yield c
