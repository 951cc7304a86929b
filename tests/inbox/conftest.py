"""Fixtures for every inbox test."""

from __future__ import annotations

import pytest

from findesk.auth.web_sessions import SignInLimiter
from findesk.inbox import endpoints as inbox_endpoints


@pytest.fixture(autouse=True)
def limiter(monkeypatch: pytest.MonkeyPatch) -> SignInLimiter:
    """The sign-in limiter lives in the process: each test gets its own, so that the failures
    one test provokes on purpose never lock another test (or another module) out."""
    fresh = SignInLimiter()
    monkeypatch.setattr(inbox_endpoints, "limiter", fresh)
    return fresh
