"""A stand-in for Fin's webhook: a real HTTP server on loopback that records what it receives.

Its answer can be changed while it runs (``respond``), and it can stop listening and start again
on the same port (``refuse`` / ``accept``) to act out an outage. Waiting is on a condition
variable, never a blind sleep.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.server import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when the request was read

    @property
    def conversation_id(self) -> str:
        return str(self.body.get("conversation_id"))


@dataclass(frozen=True)
class Attempt:
    """Every request, answered 2xx or not, with what it carried and what we answered."""

    path: str
    status: int  # what we answered
    headers: dict[str, str]  # what the request carried
    answered_headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when the request was read
    wall: float  # time.time() then (the worker schedules on the wall clock)
    raw: bytes = b""  # the body as sent (what a signature covers)

    @property
    def conversation_id(self) -> str:
        return str(self.body.get("conversation_id"))

    @property
    def delivery_id(self) -> str:
        return self.headers["X-Findesk-Delivery"]

    @property
    def attempt_no(self) -> int:
        return int(self.headers["X-Findesk-Attempt"])


class _Server(ThreadingHTTPServer):
    # A worker opens several connections at once; the default backlog of 5 drops some.
    request_queue_size = 128


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._status = 200
        self._headers: dict[str, str] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Every request, answered or not (``received`` holds the 2xx-answered ones).
        self.log: list[Attempt] = []
        # Cleared by hold(): requests are recorded at once but answered only on release().
        self._gate = threading.Event()
        self._gate.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hook_url(self, integration_id: str = "test-integration") -> str:
        return f"{self.url}/hooks/standalone/custom_helpdesk_conversation_event/{integration_id}"

    # --- behaviour ----------------------------------------------------------------------------

    def respond(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer every following request with ``status`` (and ``headers``)."""
        with self._cond:
            self._status, self._headers = status, dict(headers or {})

    def accept(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                at, wall = time.monotonic(), time.time()
                sent = dict(self.headers.items())
                with receiver._cond:
                    status, answered = receiver._status, receiver._headers
                    if 200 <= status < 300:
                        receiver.received.append(Received(self.path, sent, body, at))
                    receiver.log.append(
                        Attempt(self.path, status, sent, answered, body, at, wall, raw)
                    )
                    receiver._cond.notify_all()
                receiver._gate.wait(timeout=60)
                self.send_response(status)
                for name, value in answered.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        server = _Server(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def hold(self) -> None:
        """Keep every following answer back (the calls stay in flight) until ``release()``."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def refuse(self) -> None:
        """Stop listening: connections are refused until ``accept()``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.refuse()

    # --- reading ------------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[list[Received]], bool], timeout: float = 30) -> bool:
        """Block until ``predicate(received)`` holds; False on timeout."""
        return self._wait(lambda: predicate(self.received), timeout)

    def wait_for(self, predicate: Callable[[list[Attempt]], bool], timeout: float = 30) -> bool:
        """Block until ``predicate(log)`` holds (every attempt, answered or not)."""
        return self._wait(lambda: predicate(self.log), timeout)

    def _wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def log_of(self, conversation_id: str) -> list[Attempt]:
        with self._cond:
            return [a for a in self.log if a.conversation_id == conversation_id]

    def for_conversation(self, conversation_id: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.conversation_id == conversation_id]

    def snapshot(self) -> list[Received]:
        with self._cond:
            return list(self.received)


WEBHOOK_KEY = "test-webhook-key"


def notifier_settings(receiver: Receiver, **overrides: object) -> dict[str, object]:
    """Settings that point findesk's notifier at ``receiver``, with quick retries."""
    return {
        "fin_webhook_url": receiver.hook_url(),
        "fin_webhook_key": WEBHOOK_KEY,
        "notifier_poll_seconds": 0.2,
        "notifier_backoff_base_seconds": 0.05,
        "notifier_backoff_max_seconds": 0.5,
        **overrides,
    }


def eventually(predicate: Callable[[], bool], timeout: float = 20, interval: float = 0.05) -> bool:
    """Poll a condition that nothing signals (database state) until it holds or time runs out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
