"""How the conformance suite signs its Fin API calls: with findesk's own signer.

:class:`SuiteSigner` is :class:`findesk.fin_api.signing.FinRequestSigner` with two knobs the
checks need: a clock ``offset`` (a stale signature) and a distinct timestamp for a call that is
the same as an earlier one. The suite repeats calls on purpose (a repeated create, ten identical
creates at once); signed in the same second they would carry the very same signature, which a
helpdesk that refuses replays rightly refuses. Fin's own retries come a minute apart. So a repeat
is signed one second later than the last identical call (never more than a few seconds ahead,
well inside the five minutes a timestamp may be off). What was signed is remembered by every
signer of the process with the same secret, scheme and clock, not by one: two runs one after the
other (or at once) send the same bodies, and one run's last call may share its second with the
next run's first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import ClassVar

import httpx

from findesk.fin_api.signing import (
    FinRequestSigner,
    SignatureScheme,
    signature_headers,
    signed_string,
)


class SuiteSigner(FinRequestSigner):
    """Signs like Fin; ``offset`` seconds are added to the clock (negative: in the past)."""

    def __init__(
        self,
        secret: str,
        scheme: SignatureScheme = "bound",
        offset: int = 0,
        fixed: int | None = None,
    ) -> None:
        """``fixed``: sign every call with this timestamp (a replay: the same call, the same
        signature)."""
        super().__init__(secret, scheme)
        self.offset = offset
        self.fixed = fixed

    _last: ClassVar[dict[tuple[str, str, int, bytes], int]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def timestamp_for(self, request: httpx.Request) -> int:
        """Now (plus the offset), or one second after the last identical call's timestamp."""
        url = request.url
        message = signed_string(
            self.scheme, "", request.method, url.path, url.query.decode("ascii"), request.content
        )
        key = (self.secret, self.scheme, self.offset, message)
        now = int(time.time()) + self.offset
        last = SuiteSigner._last
        with SuiteSigner._lock:
            stamp = max(now, last.get(key, now - 1) + 1)
            last[key] = stamp
            if len(last) > 10_000:  # a long run: forget the old ones
                for old in [k for k, v in last.items() if v < now - 5]:
                    del last[old]
        return stamp

    def sign(self, request: httpx.Request, timestamp: int | None = None) -> httpx.Request:
        stamp = timestamp if timestamp is not None else self.fixed
        if stamp is None:
            stamp = self.timestamp_for(request)
        request.headers.update(
            signature_headers(
                self.secret,
                request.method,
                request.url,
                request.content,
                scheme=self.scheme,
                timestamp=stamp,
            )
        )
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield self.sign(request)
