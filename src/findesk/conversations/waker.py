"""The waker: brings snoozed conversations back into their queues when their time comes.

It sleeps until the next snooze ends, or until a snooze committed in this process wakes it to
look again; snoozes set by other processes are seen within ``snooze_check_seconds``. Each
round wakes what is due in one transaction; any number of processes may run it (PostgreSQL:
each skips the rows another is waking).
"""

from __future__ import annotations

import asyncio
import logging

from findesk.conversations import service
from findesk.kit.commit_signal import BackgroundLoop
from findesk.kit.db import Database
from findesk.kit.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)
BATCH = 100


class Waker(BackgroundLoop):
    def __init__(self, db: Database, check_seconds: float) -> None:
        self.db = db
        self.check_seconds = check_seconds
        super().__init__()

    def run_once(self) -> int:
        """Wake every conversation that is due; how many it woke."""
        woken = 0
        while True:
            with self.db.transaction() as session:
                count = service.wake_due(session, limit=BATCH)
            woken += count
            if count < BATCH:
                return woken

    def seconds_until_due(self) -> float:
        with self.db.read_session() as session:
            due = service.next_wake_at(session)
        if due is None:
            return self.check_seconds
        return min(self.check_seconds, max(0.0, (as_utc(due) - utcnow()).total_seconds()))

    async def run(self) -> None:
        self._alarm.arm()
        unsubscribe = service.snoozed.subscribe(lambda _count: self.wake())
        try:
            while not self._stopping:
                delay = self.check_seconds
                try:
                    woken = await asyncio.to_thread(self.run_once)
                    if woken:
                        log.info("woke snoozed conversations", extra={"fields": {"count": woken}})
                    delay = await asyncio.to_thread(self.seconds_until_due)
                except Exception:  # a database hiccup must not end the loop
                    log.exception("waker round failed")
                await self._sleep(delay)
        finally:
            unsubscribe()
