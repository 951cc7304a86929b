"""Agent typing: ephemeral (never stored), throttled per conversation and agent."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from findesk.agents.models import Agent

THROTTLE_SECONDS = 3.0


@dataclass(frozen=True)
class TypingSignal:
    conversation_id: str
    agent_id: str
    name: str
    email: str


class TypingSignals:
    """Takes typing intents without blocking the request; at most one per conversation and
    agent every ``throttle`` seconds. The notifier drains them and sends them to Fin."""

    def __init__(self, throttle: float = THROTTLE_SECONDS, capacity: int = 10_000) -> None:
        self.throttle = throttle
        self._last: dict[tuple[str, str], float] = {}
        self._pending: deque[TypingSignal] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def signal(self, conversation_id: str, agent: Agent) -> bool:
        """Returns whether the intent was taken (False when throttled)."""
        now = time.monotonic()
        key = (conversation_id, agent.id)
        with self._lock:
            if now - self._last.get(key, -self.throttle) < self.throttle:
                return False
            self._last[key] = now
            if len(self._last) > 50_000:  # forget old keys so memory stays bounded
                cutoff = now - self.throttle
                self._last = {k: t for k, t in self._last.items() if t >= cutoff}
            self._pending.append(
                TypingSignal(conversation_id, agent.id, agent.alias or agent.name, agent.email)
            )
            return True

    def drain(self) -> list[TypingSignal]:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
            return items
