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


class EveryPerKey:
    """``due(key)`` is true at most once every ``seconds`` per key in this process. Keys not due
    for a period are forgotten once more than ``keep`` are held."""

    def __init__(self, seconds: float, keep: int = 10_000) -> None:
        self.seconds = seconds
        self.keep = keep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, key: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._next.get(key, 0.0):
                return False
            if len(self._next) >= self.keep:
                self._next = {k: t for k, t in self._next.items() if t > now}
            self._next[key] = now + self.seconds
            return True

    def forget(self, key: str) -> None:
        """``due(key)`` is true again at once."""
        with self._lock:
            self._next.pop(key, None)
