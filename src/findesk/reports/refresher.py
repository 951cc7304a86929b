"""Keeps the reports' facts current in ``findesk serve``: a refresh every
``FINDESK_REPORTS_REFRESH_SECONDS`` (one process at a time does it; the others skip the round)."""

from __future__ import annotations

import asyncio
import logging

from findesk.kit.commit_signal import BackgroundLoop
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.reports import service

log = logging.getLogger(__name__)


class Refresher(BackgroundLoop):
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        super().__init__()

    async def run(self) -> None:
        self._alarm.arm()
        while not self._stopping:
            try:
                result = await asyncio.to_thread(
                    service.refresh, self.db, self.settings, wait=False
                )
                if result.conversations:
                    log.info(
                        "reports refreshed",
                        extra={"fields": {"conversations": result.conversations,
                                          "days": result.days, "full": result.full}},
                    )  # fmt: skip
            except Exception:  # a database hiccup must not end the loop
                log.exception("reports refresh failed")
            await self._sleep(self.settings.reports_refresh_seconds)
