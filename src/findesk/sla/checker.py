"""The SLA checker in ``findesk serve``: every ``FINDESK_SLA_CHECK_SECONDS`` it breaches the
timers past due (``service.check``: one process at a time per database; the others skip the
round)."""

from __future__ import annotations

import asyncio
import logging

from findesk.kit.commit_signal import BackgroundLoop
from findesk.kit.db import Database
from findesk.sla import service

log = logging.getLogger(__name__)


class Checker(BackgroundLoop):
    def __init__(self, db: Database, check_seconds: float) -> None:
        self.db = db
        self.check_seconds = check_seconds
        super().__init__()

    async def run(self) -> None:
        self._alarm.arm()
        while not self._stopping:
            try:
                breached = await asyncio.to_thread(service.check, self.db)
                if breached:
                    log.info("SLA targets breached", extra={"fields": {"count": breached}})
            except Exception:  # a database hiccup must not end the loop
                log.exception("SLA check failed")
            await self._sleep(self.check_seconds)
