"""How findesk is served: uvicorn, with read timeouts that uvicorn lacks.

uvicorn waits for ever for a request's headers and body, so a few hundred slow clients (each
sending a byte now and then) hold as many connections open. Here each connection must deliver
its request headers within ``header_timeout`` (counted from the connection's opening, or from the
first byte of a later request on a kept-alive connection: the idle wait between requests is
uvicorn's keep-alive timeout), and a body must not stall for longer than ``body_timeout`` between
two pieces (a slow upload that keeps coming is never cut). A request that was begun is answered
408 and closed; a connection that sent nothing is just closed. While findesk itself is not reading
(the app has not asked for more of the body yet, or awaits its ``100 Continue``), no clock runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from findesk.kit.settings import Settings

log = logging.getLogger("findesk.serving")

_Phase = Literal["idle", "headers", "body"]


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a header read timeout and a body read timeout."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    # One timer per connection, re-armed lazily: bytes arriving only move ``_deadline``.
    _phase: _Phase = "idle"
    _begun = False
    _deadline = 0.0
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase, self._begun = "headers", False  # a request is due
        self._deadline = self.loop.time() + self.header_timeout
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase == "idle" or self.transport.is_closing():
            self._disarm()
        else:
            self._arm()

    def handle_websocket_upgrade(self) -> None:
        self._phase = "idle"  # the connection is the WebSocket protocol's from here
        self._disarm()
        super().handle_websocket_upgrade()

    # --- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._phase == "idle":  # a later request on a kept-alive connection
            self._phase = "headers"
            self._deadline = self.loop.time() + self.header_timeout
        self._begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase = "body"
        self._deadline = self.loop.time() + self.body_timeout
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._deadline = self.loop.time() + self.body_timeout
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase, self._begun = "idle", False
        super().on_message_complete()

    # --- the clock --------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is not None:
            if self._timer.when() <= self._deadline:
                return  # it fires first and re-arms for what is left
            self._timer.cancel()  # a shorter deadline than the one it was armed for
        self._timer = self.loop.call_at(self._deadline, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _findesk_is_not_reading(self) -> bool:
        cycle = self.cycle
        return self.flow.read_paused or (
            self._phase == "body" and cycle is not None and cycle.waiting_for_100_continue
        )

    def _on_timer(self) -> None:
        self._timer = None
        if self._phase == "idle" or self.transport.is_closing():
            return
        now = self.loop.time()
        if self._findesk_is_not_reading():  # the client is not the one keeping us waiting
            self._deadline = now + (
                self.body_timeout if self._phase == "body" else self.header_timeout
            )
        if now < self._deadline:
            self._arm()
            return
        self._time_out()

    def _time_out(self) -> None:
        cycle = self.cycle
        if self._phase == "headers":  # (a response may still be on its way: never cut into it)
            answer = self._begun and (cycle is None or cycle.response_complete)
        else:
            answer = cycle is not None and not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The app, if it waits for the body, sees the client gone, and sends nothing more.
            cycle.disconnected = True
            cycle.message_event.set()
        log.debug("closing a connection: request %s timed out", self._phase)
        if answer:
            self._send_408()
        self.transport.close()

    def _send_408(self) -> None:
        message = b"The request took too long to arrive.\n"
        content = [STATUS_LINE[408]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(message)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                message,
            ]
        )
        self.transport.write(b"".join(content))


@functools.cache
def timed_protocol(header_timeout: float, body_timeout: float) -> type[TimedHttpToolsProtocol]:
    """The protocol class for uvicorn, with these timeouts."""
    return type(
        "FindeskHttpProtocol",
        (TimedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )


@dataclass(frozen=True)
class TimedProtocolFactory:
    """What uvicorn calls for each connection's protocol when its configuration must be pickled
    (it is sent to each worker process): the timeouts travel, not a class made at run time."""

    header_timeout: float
    body_timeout: float

    def __call__(self, **kwargs: Any) -> TimedHttpToolsProtocol:
        return timed_protocol(self.header_timeout, self.body_timeout)(**kwargs)


def server_config(
    app: Any,
    settings: Settings,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    workers: int = 1,
    **options: Any,
) -> uvicorn.Config:
    """uvicorn's configuration for findesk: ``findesk serve`` and the tests' live servers.

    With ``workers`` beyond 1, ``app`` must be an import string (with ``factory=True`` for a
    function that makes the app): each worker process builds its own."""
    timeouts = (settings.header_timeout_seconds, settings.body_timeout_seconds)
    http: Any = TimedProtocolFactory(*timeouts) if workers > 1 else timed_protocol(*timeouts)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=http,
        workers=workers,
        log_level=log_level,
        access_log=False,
        # uvicorn believes X-Forwarded-For from loopback by default: anyone on the machine, or
        # any proxy, could then pose as any address. Only the configured proxies are believed.
        proxy_headers=bool(settings.trusted_proxies.strip()),
        forwarded_allow_ips=settings.trusted_proxies.strip() or None,
        **options,
    )
