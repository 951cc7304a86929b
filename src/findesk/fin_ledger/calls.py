"""What a Fin API call leaves behind on the request path: a record in a bounded in-process
buffer, never a database write (the recorder writes the buffer in batches).

The Fin API's endpoints ``note`` the ids they know on the request (the conversation, the user,
``after_id``, the messages they return or create); the route takes the operation, the status
code, the client and the time, and hands everything to ``FinLedger.observe``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request

from findesk.fin_ledger.metrics import FIN_API_DURATION, LEDGER_DROPPED
from findesk.kit.timeutil import utcnow

DEFAULT_CAPACITY = 10_000  # calls; at a flush every 200 ms, room for 50,000 calls a second
_STATE = "fin_call"


@dataclass(slots=True)
class CallFacts:
    """The ids one call named or answered with, as its endpoint noted them."""

    conversation_id: str | None = None
    user_id: str | None = None
    after_id: str | None = None
    message_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One Fin API call, as the ledger keeps it."""

    at: datetime  # when findesk answered
    operation: str
    client_id: str | None
    conversation_id: str | None
    user_id: str | None
    after_id: str | None
    message_ids: list[str]
    status_code: int
    duration_ms: float


def note(
    request: Request,
    *,
    conversation_id: str | None = None,
    user_id: str | None = None,
    after_id: str | None = None,
    message_ids: Sequence[str] | None = None,
) -> None:
    """Tell the ledger which ids this call is about (only the ones given change)."""
    facts: CallFacts | None = getattr(request.state, _STATE, None)
    if facts is None:
        facts = CallFacts()
        setattr(request.state, _STATE, facts)
    if conversation_id is not None:
        facts.conversation_id = conversation_id
    if user_id is not None:
        facts.user_id = user_id
    if after_id is not None:
        facts.after_id = after_id
    if message_ids is not None:
        facts.message_ids = list(message_ids)


class LedgerBuffer:
    """Thread-safe and bounded: when full, a call is dropped (and counted), never waited for."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._items: list[CallRecord] = []
        self._lock = threading.Lock()

    def append(self, record: CallRecord) -> bool:
        with self._lock:
            if len(self._items) < self.capacity:
                self._items.append(record)
                return True
        LEDGER_DROPPED.labels("buffer_full").inc()
        return False

    def drain(self) -> list[CallRecord]:
        """Everything buffered so far, in arrival order; the buffer is empty after."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def __len__(self) -> int:
        return len(self._items)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class FinLedger:
    """The process's entry point for recording calls: latency histograms always, ledger
    records while the ledger is enabled."""

    def __init__(self, enabled: bool, capacity: int = DEFAULT_CAPACITY) -> None:
        self.enabled = enabled
        self.buffer = LedgerBuffer(capacity)

    def observe(self, operation: str, request: Request, status: int, seconds: float) -> None:
        FIN_API_DURATION.labels(operation, status_class(status)).observe(seconds)
        if not self.enabled:
            return
        facts: CallFacts = getattr(request.state, _STATE, None) or CallFacts()
        client_id = getattr(request.state, "fin_client_id", None)
        self.buffer.append(
            CallRecord(
                at=utcnow(),
                operation=operation,
                client_id=client_id,
                conversation_id=facts.conversation_id,
                user_id=facts.user_id,
                after_id=facts.after_id,
                message_ids=facts.message_ids,
                status_code=status,
                duration_ms=seconds * 1000,
            )
        )


def ledger_of(request: Request) -> FinLedger:
    ledger: FinLedger = request.app.state.fin_ledger
    return ledger
