"""Agent typing (spec 6): ephemeral (never stored), best effort, throttled per conversation and
agent, and never blocking the request that signalled it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx

from findesk import __version__
from findesk.agents.models import Agent
from findesk.kit.settings import Settings
from findesk.notifier import metrics

log = logging.getLogger("findesk.notifier.typing")

QUEUE_SIZE = 1000
SEND_TIMEOUT_SECONDS = 5.0


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


class TypingSender:
    """``signal()`` from any thread; a task on the app's event loop sends to Fin."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.throttle = settings.typing_throttle_seconds
        self._transport = transport
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None

    def signal(self, conversation_id: str, agent: Agent) -> bool:
        """Queue a typing event; False when throttled or dropped."""
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
        loop.call_soon_threadsafe(self._enqueue, queue, typing_payload(conversation_id, agent))
        return True

    @staticmethod
    def _enqueue(queue: asyncio.Queue[dict[str, Any]], payload: dict[str, Any]) -> None:
        try:
            queue.put_nowait(payload)
        except asyncio.QueueFull:
            metrics.TYPING_SENT.labels("dropped").inc()

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

    async def _run(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(
            timeout=SEND_TIMEOUT_SECONDS,
            follow_redirects=False,
            headers={"User-Agent": f"findesk/{__version__}"},
            transport=self._transport,
        ) as http:
            while True:
                payload = await queue.get()
                await self._send(http, payload)

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
        except httpx.HTTPError as exc:
            ok = False
            fields["error"] = f"{type(exc).__name__}: {exc}"
        metrics.TYPING_SENT.labels("sent" if ok else "failed").inc()
        log.log(
            logging.DEBUG if ok else logging.WARNING,
            "typing %s",
            "sent" if ok else "failed",
            extra={"fields": fields},
        )
