"""Helpers for the chat's tests: a visitor's HTTP client of the widget API, a reader of their
live stream (server-sent events, in a thread, waited on with a condition), and a small recording
Intercom double over real HTTP."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from support.server import LiveServer, free_port

IDENTITY_SECRET = "test-identity-secret-0123456789"
WEBHOOK_SECRET = "test-fin-agent-webhook-secret"
FIN_AGENT_TOKEN = "test-fin-agent-token"
CC_TOKEN = "test-custom-channel-token"
CC_CALLBACK_TOKEN = "test-custom-channel-callback-token"


def signed_hash(user_id: str, secret: str = IDENTITY_SECRET) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


class Visitor:
    """A visitor's browser calling the widget API with their session token."""

    def __init__(self, server: LiveServer, session: dict[str, Any]) -> None:
        self.server = server
        self.session = session
        self.token = str(session["token"])
        self.http = httpx.Client(
            base_url=f"{server.base_url}/chat/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    @classmethod
    def start(cls, server: LiveServer, **identity: Any) -> Visitor:
        response = httpx.post(f"{server.base_url}/chat/v1/session", json=identity, timeout=30)
        assert response.status_code == 201, response.text
        return cls(server, response.json())

    @property
    def user_id(self) -> str:
        return str(self.session["user"]["id"])

    def ask(self, body: str, **extra: Any) -> dict[str, Any]:
        response = self.http.post("/conversations", json={"body": body, **extra})
        assert response.status_code == 201, response.text
        found: dict[str, Any] = response.json()
        return found

    def say(self, conversation_id: str, body: str | None = None, **extra: Any) -> dict[str, Any]:
        payload = {"body": body, **extra} if body is not None else extra
        response = self.http.post(f"/conversations/{conversation_id}/messages", json=payload)
        assert response.status_code == 201, response.text
        found: dict[str, Any] = response.json()
        return found

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/conversations/{conversation_id}/messages")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def close(self) -> None:
        self.http.close()


@dataclass
class SseEvent:
    id: str | None
    name: str
    data: dict[str, Any]


@dataclass
class EventStream:
    """Reads a visitor's ``/chat/v1/events`` in a thread; ``wait_for`` waits on a condition."""

    server: LiveServer
    token: str
    after: str | None = None
    events: list[SseEvent] = field(default_factory=list)
    opened: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.opened.wait(20), "the event stream did not open"

    def _run(self) -> None:
        try:
            self._read()
        except (httpx.HTTPError, OSError):
            if not self._stop:  # closed by close(): the end, not a failure
                raise

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.after is not None:
            headers["Last-Event-ID"] = self.after
        timeout = httpx.Timeout(30, read=60)
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream(
                "GET", f"{self.server.base_url}/chat/v1/events", headers=headers
            ) as response,
        ):
            assert response.status_code == 200
            self._response = response
            current: dict[str, Any] = {}
            for line in response.iter_lines():
                if line.startswith("retry:"):
                    self.opened.set()
                if self._stop:
                    return
                if line == "":
                    if "data" in current:
                        event = SseEvent(
                            current.get("id"), current.get("event", "message"), current["data"]
                        )
                        with self._cond:
                            self.events.append(event)
                            self._cond.notify_all()
                    current = {}
                elif line.startswith("id: "):
                    current["id"] = line[4:]
                elif line.startswith("event: "):
                    current["event"] = line[7:]
                elif line.startswith("data: "):
                    current["data"] = json.loads(line[6:])

    def wait_for(self, predicate: Callable[[SseEvent], bool], timeout: float = 20) -> SseEvent:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no such event; got {[e.name for e in self.events]}"
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop = True
        response = getattr(self, "_response", None)
        if response is not None:
            with contextlib.suppress(Exception):  # closed under the reading thread: it ends
                response.close()


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class IntercomDouble:
    """Intercom's side of the Fin Agent API and Custom Channel Events as far as findesk calls
    it: records every call (answered or not), answers in Intercom's shapes, and can be down
    (connections refused) and up again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls: list[Call] = []  # answered 200
        self.attempts = 0
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> IntercomDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw or b"{}")
                with double._cond:
                    double.attempts += 1
                    status = double.status
                    if status == 200:
                        double.calls.append(Call(self.path, dict(self.headers.items()), body))
                    double._cond.notify_all()
                if status == 200:
                    answer: dict[str, Any] = {
                        "conversation_id": body.get("conversation_id")
                        or f"ic-{body.get('external_conversation_id')}",
                        "user_id": (body.get("user") or {}).get("id"),
                        "status": "thinking",
                        "created_at_ms": int(time.time() * 1000),
                    }
                else:
                    answer = {
                        "type": "error.list",
                        "request_id": "req-1",
                        "errors": [{"code": "server_error", "message": "down"}],
                    }
                raw_answer = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw_answer)))
                self.end_headers()
                self.wfile.write(raw_answer)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def calls_for(self, conversation_id: str) -> list[Call]:
        with self._cond:
            return [
                c
                for c in self.calls
                if conversation_id
                in (c.body.get("conversation_id"), c.body.get("external_conversation_id"))
            ]

    def wait_calls(self, conversation_id: str, count: int, timeout: float = 20) -> list[Call]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.calls_for(conversation_id)) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"calls so far: {self.calls_for(conversation_id)}"
                self._cond.wait(remaining)
            return self.calls_for(conversation_id)

    def wait_attempts(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.attempts < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0
                self._cond.wait(remaining)


def fast_outbox() -> dict[str, Any]:
    return {
        "notifier_poll_seconds": 0.2,
        "notifier_backoff_base_seconds": 0.05,
        "notifier_backoff_max_seconds": 0.3,
        "webhooks_allow_loopback": True,
        "live_poll_seconds": 0.2,
    }
