"""Fixtures: the AI Content API emulator, live on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from content_api_server import OTHER_TOKEN, TOKEN, ServedApp
from loop_support import Loop, start_loop

from findesk.emulator.content_api import create_content_api


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """One emulator per module, with a limit high enough never to get in the way."""
    db = tmp_path_factory.mktemp("emulator") / "content.db"
    served = ServedApp(create_content_api(f"sqlite:///{db}", [TOKEN, OTHER_TOKEN], 100_000, 10))
    yield served
    served.stop()


@pytest.fixture
def api(emulator: ServedApp) -> Iterator[httpx.Client]:
    with emulator.client() as client:
        yield client


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[ServedApp]:
    """A fresh emulator allowing 5 requests per 1-second window."""
    served = ServedApp(create_content_api(f"sqlite:///{tmp_path / 'c.db'}", [TOKEN], 5, 1.0))
    yield served
    served.stop()


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """findesk and the emulator wired together (see ``loop_support``)."""
    wired = start_loop(tmp_path_factory.mktemp("loop"))
    yield wired
    wired.stop()
