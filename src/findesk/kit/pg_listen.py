"""PostgreSQL ``LISTEN``: a dedicated connection that wakes this process when another one commits.

A notification only says "look again"; what to look at is always read from the tables, so a
notification lost while the connection was down costs nothing but time: ``on_listening`` is
called each time the connection (re)starts listening, and the caller reads everything it may
have missed then. The connection is checked now and then (a dead peer is noticed within about a
minute) and opened again with growing pauses when it fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("findesk.listen")

CHECK_SECONDS = 30.0  # a quiet connection is asked SELECT 1 this often
CHECK_TIMEOUT_SECONDS = 10.0
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0


def connect_params(engine: Engine, application_name: str) -> dict[str, Any]:
    """psycopg's connection parameters for the database ``engine`` connects to."""
    _, params = engine.dialect.create_connect_args(engine.url)
    params = {key: value for key, value in params.items() if key != "context"}
    params.setdefault("application_name", application_name)
    # A peer that vanished without closing (a network partition) is noticed by TCP too.
    for key, value in (("keepalives", 1), ("keepalives_idle", 30), ("keepalives_interval", 10)):
        params.setdefault(key, value)
    return params


class Listener:
    """``LISTEN channel`` on a connection of its own, calling ``on_notify()`` for every
    notification and ``on_listening()`` each time listening (re)starts; ``run()`` until
    cancelled. Both callbacks run on the event loop and must not block."""

    def __init__(
        self,
        engine: Engine,
        channel: str,
        on_notify: Callable[[], None],
        on_listening: Callable[[], None],
        *,
        application_name: str = "findesk listener",
    ) -> None:
        if not channel.isidentifier():
            raise ValueError(f"not a channel name: {channel!r}")
        self.channel = channel
        self._params = connect_params(engine, application_name)
        self._on_notify = on_notify
        self._on_listening = on_listening
        self.listening = False
        self.backend_pid: int | None = None  # the server process of the connection, for tests

    async def run(self) -> None:
        import psycopg

        pause = FIRST_RETRY_SECONDS
        failures = 0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(autocommit=True, **self._params)
                async with conn:
                    await conn.execute(f"LISTEN {self.channel}")
                    self.listening, self.backend_pid = True, conn.info.backend_pid
                    if failures:
                        log.info("listening on %s again", self.channel)
                    pause, failures = FIRST_RETRY_SECONDS, 0
                    self._on_listening()
                    await self._receive(conn)
            except Exception as exc:  # the database is down or unreachable, most likely
                failures += 1
                # The first failure is worth a warning; a database down for long, not a flood.
                log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "listening on %s failed (%s: %s); polling until it is back",
                    self.channel,
                    type(exc).__name__,
                    exc,
                )
            finally:
                self.listening, self.backend_pid = False, None
            await asyncio.sleep(pause)
            pause = min(MAX_RETRY_SECONDS, pause * 2)

    async def _receive(self, conn: Any) -> None:
        while True:
            async for _ in conn.notifies(timeout=CHECK_SECONDS):
                self._on_notify()
            # Quiet for a while: make sure the connection is still there.
            await asyncio.wait_for(conn.execute("SELECT 1"), CHECK_TIMEOUT_SECONDS)
