"""Housekeeping that rides along with requests: "is it time yet?", at most once per period."""

from __future__ import annotations

import threading
import time


class Every:
    """``due()`` is true at most once every ``seconds`` in this process (the first call is)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return False
            self._next = now + self.seconds
            return True
