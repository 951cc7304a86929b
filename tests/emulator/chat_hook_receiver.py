"""A stand-in for findesk's chat hooks: a real HTTP server on loopback that checks each delivery
the way findesk does (the Fin Agent API's signature, or the Custom Channel's bearer token: 401
and nothing kept when it is missing or wrong), keeps what it accepts, and can be told to answer
500 a few times to act out an outage. Waiting is on a condition, never a blind sleep."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.server import free_port


@dataclass(frozen=True)
class Hit:
    status: int  # what the receiver answered
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.raw))


def signature_ok(secret: str, raw: bytes, header: str | None) -> bool:
    """findesk's check: ``sha256=<hex>`` (or the bare hex) of the raw body, constant time."""
    if not header:
        return False
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().lower().removeprefix("sha256="), expected)


class HookReceiver:
    def __init__(self, *, secret: str | None = None, token: str | None = None) -> None:
        self.secret = secret
        self.token = token
        self.port = free_port()
        self.hits: list[Hit] = []
        self.fail_next = 0  # answer 500 to this many acceptable deliveries
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = dict(self.headers.items())
                with receiver._cond:
                    if not receiver._authentic(raw, headers):
                        status = 401
                    elif receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.hits.append(Hit(status, headers, raw))
                    receiver._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _authentic(self, raw: bytes, headers: dict[str, str]) -> bool:
        lower = {k.lower(): v for k, v in headers.items()}
        if self.secret is not None:
            return signature_ok(self.secret, raw, lower.get("x-fin-agent-api-webhook-signature"))
        if self.token is not None:
            given = lower.get("authorization", "")
            return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())
        return True

    def accepted(self, key: str, value: str) -> list[dict[str, Any]]:
        """The bodies accepted whose ``key`` is ``value``, in the order they arrived."""
        with self._cond:
            return [h.body for h in self.hits if h.status == 200 and h.body.get(key) == value]

    def wait(self, condition: Callable[[], bool], timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
