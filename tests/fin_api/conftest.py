from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.fin import World

from findesk.fin_api.client import FinApiClient


@pytest.fixture(params=["rest", "posts-only"])
def api(request: pytest.FixtureRequest, fin: httpx.Client) -> FinApiClient:
    """The Fin API as Fin calls it, in each variant."""
    return FinApiClient(fin, request.param)


@pytest.fixture
def world(api: FinApiClient, server: Any) -> World:
    return World(api, server.fin_agent_id)
