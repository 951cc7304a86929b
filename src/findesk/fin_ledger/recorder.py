"""The recorder: a background task of the app that writes the buffered Fin API calls to the
ledger in one transaction every ``flush_seconds`` (with the receipts they carry) and prunes
the ledger past its retention, at start and then hourly. On stop it writes what is left.

Its database work runs in a thread of its own, so a busy request thread pool never holds a
receipt back.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import ParamSpec, TypeVar

from findesk.fin_ledger import service
from findesk.fin_ledger.calls import CallRecord, FinLedger
from findesk.fin_ledger.metrics import LEDGER_DROPPED, LEDGER_RECORDED
from findesk.kit.commit_signal import BackgroundLoop
from findesk.kit.db import Database

log = logging.getLogger("findesk.fin_ledger")

FLUSH_SECONDS = 0.2
PRUNE_EVERY_SECONDS = 3600.0
T = TypeVar("T")
P = ParamSpec("P")


class LedgerRecorder(BackgroundLoop):
    """Writes the buffered Fin API calls every ``flush_seconds``; after ``stop()``, ``run()``
    writes what is still buffered, then returns."""

    def __init__(
        self,
        db: Database,
        ledger: FinLedger,
        retention: timedelta,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        prune_every_seconds: float = PRUNE_EVERY_SECONDS,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.retention = retention
        self.flush_seconds = flush_seconds
        self.prune_every_seconds = prune_every_seconds
        super().__init__()
        self._last_prune: float | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="findesk-ledger")

    async def run(self) -> None:
        self._alarm.arm()
        try:
            while not self._stopping:
                await self._maybe_prune()
                await self.flush()
                await self._sleep(self.flush_seconds)
            await self.flush()
        finally:
            self._thread.shutdown(wait=True)

    async def flush(self) -> int:
        """Write the buffered calls in one transaction; how many. A batch the database refuses
        is dropped (and counted): the ledger is observability, it must not pile up."""
        batch = self.ledger.buffer.drain()
        if not batch:
            return 0
        try:
            await self._in_thread(self._write, batch)
        except Exception:
            log.exception("could not write %d Fin API calls to the ledger", len(batch))
            LEDGER_DROPPED.labels("write_failed").inc(len(batch))
            return 0
        LEDGER_RECORDED.inc(len(batch))
        return len(batch)

    def _write(self, batch: list[CallRecord]) -> None:
        with self.db.transaction() as session:
            service.record_calls(session, batch)

    async def prune(self) -> tuple[int, int]:
        return await self._in_thread(self._prune)

    def _prune(self) -> tuple[int, int]:
        with self.db.transaction() as session:
            return service.prune(session, self.retention)

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if self._last_prune is not None and now - self._last_prune < self.prune_every_seconds:
            return
        self._last_prune = now
        try:
            calls, replies = await self.prune()
        except Exception:
            log.exception("could not prune the Fin call ledger")
            return
        if calls or replies:
            log.info(
                "pruned the Fin call ledger",
                extra={"fields": {"calls": calls, "unfetched_replies": replies}},
            )

    async def _in_thread(self, function: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(function, *args, **kw))
