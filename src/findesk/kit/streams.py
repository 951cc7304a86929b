"""Bounds on live streams (server-sent events), each of which holds a connection and a task.

Per web session: a new stream beyond ``per_key`` closes that session's oldest one rather than
being refused. The newest stream is the tab the person is looking at, and the oldest is often one
whose connection died unnoticed (a laptop that slept or changed network: no FIN ever arrives, and
the heartbeat's writes succeed for minutes), which a refusal would let lock the person out. The
closed stream is told (``retry:``) to come back only after ``EVICTED_RETRY_MS``, so a person with
more tabs than the limit sees them take turns slowly, each resuming where it stopped, instead of
pushing one another out every few seconds.

Per process: beyond ``total`` a new stream is refused (503 with ``Retry-After``): streams of other
sessions are never closed to make room.

All calls are made on the event loop's thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

EVICTED_RETRY_MS = 30_000
RETRY_AFTER_SECONDS = 30


class StreamSlot:
    """One open stream's place. ``on_evict`` is called (once) when a newer stream of the same
    key takes it; the stream should then send ``evicted_message()`` and end."""

    __slots__ = ("evicted", "key", "on_evict", "released")

    def __init__(self, key: str) -> None:
        self.key = key
        self.evicted = False
        self.released = False
        self.on_evict: Callable[[], None] = lambda: None


def evicted_message() -> bytes:
    return f"retry: {EVICTED_RETRY_MS}\n\n".encode()


class StreamSlots:
    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total = total
        self._held: dict[str, deque[StreamSlot]] = {}
        self._count = 0

    @property
    def open_count(self) -> int:
        return self._count

    def open(self, key: str) -> StreamSlot | None:
        """A slot for a new stream of ``key`` (its oldest is evicted when ``key`` holds
        ``per_key``), or None when the process holds ``total`` streams already."""
        held = self._held.get(key)
        if held is not None and len(held) >= self.per_key:
            oldest = held.popleft()
            self._count -= 1
            oldest.released = oldest.evicted = True
            oldest.on_evict()
        elif self._count >= self.total:
            return None
        slot = StreamSlot(key)
        self._held.setdefault(key, deque()).append(slot)
        self._count += 1
        return slot

    def release(self, slot: StreamSlot) -> None:
        """The stream ended (idempotent)."""
        if slot.released:
            return
        slot.released = True
        held = self._held[slot.key]
        held.remove(slot)
        self._count -= 1
        if not held:
            del self._held[slot.key]


class SlotStreamingResponse(StreamingResponse):
    """A server-sent events response that gives its slot back however it ends: finished, cancelled
    by the client's disconnect, or never started."""

    def __init__(
        self,
        slots: StreamSlots,
        slot: StreamSlot,
        content: AsyncIterable[str | bytes],
        *,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._slots, self._slot = slots, slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.release(self._slot)
