"""Agent typing (spec 6): ephemeral (never queued in the outbox), best effort, throttled per
conversation and agent, and never blocking the request that signalled it.

The throttle holds across processes: before a typing event is sent, the database is asked, in
one conditional upsert of ``typing_signals``, whether any process sent one for the pair within
``typing_throttle_seconds``; only the one that marks the row sends. The request only queues the
event (the question is asked by the sender task); a pair this process sent lately is throttled
without asking. If the database cannot answer, the event is sent anyway: typing is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from findesk import __version__
from findesk.agents.models import Agent
from findesk.kit.db import Database
from findesk.kit.periodic import Every
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.notifier import metrics, repository

log = logging.getLogger("findesk.notifier.typing")

QUEUE_SIZE = 1000
SEND_TIMEOUT_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 600.0
PRUNE_MARGIN = timedelta(minutes=1)  # rows kept past the throttle: clocks of processes differ


def typing_payload(conversation_id: str, agent: Agent) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "event_type": "agent_typing",
        "data": {
            "agent": {
                "id": agent.id,
                "user_type": "agent",
                "name": agent.alias or agent.name,
                "email": agent.email,
            }
        },
    }


@dataclass(frozen=True)
class _Queued:
    key: tuple[str, str]  # conversation, agent
    asked_at: float  # time.monotonic() when it was signalled
    payload: dict[str, Any]


class TypingSender:
    """``signal()`` from any thread; a task on the app's event loop asks the database and sends
    to Fin."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.throttle = settings.typing_throttle_seconds
        self._transport = transport
        # When this process last sent (or is about to send) each pair's event.
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Queued] | None = None
        self._task: asyncio.Task[None] | None = None
        self._prune_due = Every(PRUNE_EVERY_SECONDS).due

    def signal(self, conversation_id: str, agent: Agent) -> bool:
        """Queue a typing event; False when throttled here or dropped (it may still be
        throttled by another process's recent one, when the database is asked)."""
        now = time.monotonic()
        key = (conversation_id, agent.id)
        with self._lock:
            if now - self._last.get(key, float("-inf")) < self.throttle:
                metrics.TYPING_SENT.labels("throttled").inc()
                return False
            self._last[key] = now
            if len(self._last) > 50_000:  # forget stale keys so memory stays bounded
                self._last = {k: t for k, t in self._last.items() if now - t < self.throttle}
        loop, queue = self._loop, self._queue
        if (
            loop is None
            or queue is None
            or loop.is_closed()
            or self.settings.fin_webhook_target is None
        ):
            metrics.TYPING_SENT.labels("dropped").inc()
            return False
        queued = _Queued(key, now, typing_payload(conversation_id, agent))
        loop.call_soon_threadsafe(self._enqueue, queue, queued)
        return True

    @staticmethod
    def _enqueue(queue: asyncio.Queue[_Queued], queued: _Queued) -> None:
        try:
            queue.put_nowait(queued)
        except asyncio.QueueFull:
            metrics.TYPING_SENT.labels("dropped").inc()

    def claim(self, conversation_id: str, agent_id: str) -> bool:
        """Whether this process may send the pair's typing event now: no process sent one within
        the throttle (blocking: call from a thread)."""
        if self.throttle <= 0:
            return True
        now = utcnow()
        try:
            with self.db.transaction() as session:
                if self._prune_due():
                    repository.prune_typing(
                        session, now - timedelta(seconds=self.throttle) - PRUNE_MARGIN
                    )
                return repository.claim_typing(
                    session, conversation_id, agent_id, now, now - timedelta(seconds=self.throttle)
                )
        except Exception as exc:  # the database is unwell: send anyway (typing is harmless)
            log.warning(
                "typing throttle not checked: %s",
                type(exc).__name__,
                extra={"fields": {"conversation_id": conversation_id, "agent_id": agent_id}},
            )
            return True

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE_SIZE)
        self._task = asyncio.create_task(self._run(self._queue))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._loop = self._queue = self._task = None

    async def _run(self, queue: asyncio.Queue[_Queued]) -> None:
        async with httpx.AsyncClient(
            timeout=SEND_TIMEOUT_SECONDS,
            follow_redirects=False,
            headers={"User-Agent": f"findesk/{__version__}"},
            transport=self._transport,
        ) as http:
            while True:
                queued = await queue.get()
                try:
                    await self._decide(http, queued)
                finally:
                    queue.task_done()  # queue.join() waits until every event is decided

    async def _decide(self, http: httpx.AsyncClient, queued: _Queued) -> None:
        """Send the event, unless another process sent the pair's within the throttle."""
        if await run_in_threadpool(self.claim, *queued.key):
            await self._send(http, queued.payload)
            return
        metrics.TYPING_SENT.labels("throttled").inc()
        with self._lock:  # another process sent it: this one did not
            if self._last.get(queued.key) == queued.asked_at:
                del self._last[queued.key]

    async def _send(self, http: httpx.AsyncClient, payload: dict[str, Any]) -> None:
        target = self.settings.fin_webhook_target
        if target is None:
            return
        headers = {}
        if self.settings.fin_webhook_key is not None:
            headers["X-Webhook-Key"] = self.settings.fin_webhook_key.get_secret_value()
        fields = {
            "conversation_id": payload["conversation_id"],
            "agent_id": payload["data"]["agent"]["id"],
        }
        try:
            response = await http.post(target, json=payload, headers=headers)
            ok = response.is_success
            fields["status"] = response.status_code
        except Exception as exc:  # not only httpx's errors: whatever the call raises would
            ok = False  # end this task, and no typing event would be sent again
            fields["error"] = f"{type(exc).__name__}: {exc}"
        metrics.TYPING_SENT.labels("sent" if ok else "failed").inc()
        log.log(
            logging.DEBUG if ok else logging.WARNING,
            "typing %s",
            "sent" if ok else "failed",
            extra={"fields": fields},
        )
