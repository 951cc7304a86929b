"""The settings of the app serving the current request, for code that runs inside a service's
transaction and has no request at hand: the hooks other packages register with
``conversations.service`` (CSAT, alerts, SLAs). The app's middleware (``SettingsInUse``) sets
them for every request; outside a request (the CLI, workers) they are the environment's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from findesk.kit.settings import Settings, get_settings

_settings: ContextVar[Settings | None] = ContextVar("findesk_settings_in_use", default=None)


@contextmanager
def using_settings(settings: Settings) -> Iterator[None]:
    token = _settings.set(settings)
    try:
        yield
    finally:
        _settings.reset(token)


def current_settings() -> Settings:
    return _settings.get() or get_settings()


class SettingsInUse:
    """ASGI middleware: ``current_settings()`` is the app's while a request runs."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with using_settings(self.settings):
            await self.app(scope, receive, send)
