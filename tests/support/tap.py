"""A fault-injecting tap in front of an emulated Intercom API (ASGI middleware).

``Tap`` records every request (method, path, status, the rate-limit window it was counted in,
and the request body) in a ``Traffic`` and answers the planned ``Fault``s with an error in
Intercom's ``error.list`` shape, before the emulator's own rate limit counts them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hit:
    method: str
    path: str
    status: int
    window: str | None  # X-RateLimit-Reset: the rate-limit window the request was counted in
    body: bytes = b""
    at: float = field(default_factory=time.monotonic)  # when it was answered

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    status: int
    method: str
    path: str
    times: int | None  # None: until cleared
    code: str = "injected"
    after: bool = False  # the emulator does the request, then its answer is replaced (lost)
    reset_in: float | None = None  # X-RateLimit-Reset this many seconds ahead (for a 429)
    retry_after: float | None = None  # a Retry-After header of this many seconds (for a 429)


@dataclass
class Traffic:
    default_path: str = "/"
    hits: list[Hit] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(
        self,
        status: int,
        *,
        method: str = "POST",
        path: str | None = None,
        times: int | None = None,
        code: str = "injected",
        after: bool = False,
        reset_in: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer ``status`` to requests whose path starts with ``path`` (``after``: once the
        emulator has done them, as when an answer is lost on the way back)."""
        with self.lock:
            self.faults.append(
                Fault(
                    status,
                    method,
                    path or self.default_path,
                    times,
                    code,
                    after,
                    reset_in,
                    retry_after,
                )
            )

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def record(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def mark(self) -> int:
        with self.lock:
            return len(self.hits)

    def since(self, mark: int = 0, prefix: str = "") -> list[Hit]:
        """The requests since ``mark`` whose path starts with ``prefix``."""
        with self.lock:
            return [h for h in self.hits[mark:] if h.path.startswith(prefix)]

    def count(self, mark: int = 0, *, method: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for hit in self.since(mark)
            if (method is None or hit.method == method) and (status is None or hit.status == status)
        )

    def busiest_window(self) -> int:
        """The most requests the emulator counted (answered other than 429) in one window."""
        accepted = Counter(h.window for h in self.since() if h.status != 429 and h.window)
        return max(accepted.values(), default=0)


class Tap:
    """Records every request and answers the planned faults, in front of the emulator."""

    def __init__(self, app: Any, traffic: Traffic) -> None:
        self.app = app
        self.traffic = traffic

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        chunks: list[bytes] = []
        more = True
        while more:  # read the whole body first, then replay it to the app
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        fault = self.traffic.take_fault(method, path)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if fault is not None:
            if fault.after:

                async def swallow(_message: Any) -> None:
                    return None

                await self.app(scope, replay, swallow)
            payload = json.dumps(
                {
                    "type": "error.list",
                    "request_id": "tap",
                    "errors": [{"code": fault.code, "message": f"injected {fault.status}"}],
                }
            ).encode()
            headers = [(b"content-type", b"application/json")]
            if fault.reset_in is not None:
                reset = str(time.time() + fault.reset_in).encode()
                headers.append((b"x-ratelimit-reset", reset))
            if fault.retry_after is not None:
                headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
            await send({"type": "http.response.start", "status": fault.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            self.traffic.record(Hit(method, path, fault.status, None, body))
            return

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                reset = dict(message.get("headers") or []).get(b"x-ratelimit-reset")
                window = reset.decode() if reset else None
                self.traffic.record(Hit(method, path, message["status"], window, body))
            await send(message)

        await self.app(scope, replay, capture)
