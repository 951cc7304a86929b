"""The delivery worker: leases due outbox events, coalesces them per conversation, and calls
Fin's webhook once per conversation, with retries, back-off and dead-letter.

Runs inside ``findesk serve`` (an asyncio task) or as ``findesk worker`` processes; several
workers share the work through leases, so none delivers an event another one holds.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool

from findesk import __version__
from findesk.kit import ids
from findesk.kit.commit_signal import BackgroundLoop
from findesk.kit.db import Database
from findesk.kit.settings import Settings
from findesk.kit.timeutil import as_utc, utcnow
from findesk.notifier import metrics, repository
from findesk.notifier.models import FIN_KIND, OutboxEvent
from findesk.notifier.service import recorded

log = logging.getLogger("findesk.notifier")

PURGE_EVERY_SECONDS = 600.0
CHAT_KIND = "chat"  # calls to Intercom for findesk's own chat (``chat.delivery``)


@dataclass
class Delivery:
    """One webhook call: a conversation and every pending event it covers."""

    conversation_id: str
    event_ids: list[int]
    delivery_id: str
    attempts: int
    oldest_created_at: datetime
    first_failed_at: datetime | None
    # ``fin``, or an alert kind (webhook, email): then what ``alerts.delivery`` prepared.
    kind: str = FIN_KIND
    prepared: Any = None


@dataclass
class Outcome:
    delivered: bool
    permanent: bool = False
    error: str = ""
    status: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass
class Backoff:
    base: float
    cap: float
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential, capped, with jitter (half to full); never sooner than Retry-After."""
        ceiling = min(self.cap, self.base * 2 ** min(attempts, 32))
        delay: float = ceiling * self.rng.uniform(0.5, 1.0)
        return max(delay, retry_after or 0.0)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (as_utc(when) - now).total_seconds())


def classify(response: httpx.Response, now: datetime) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(delivered=True, status=status)
    retryable = status in (408, 429) or status >= 500
    return Outcome(
        delivered=False,
        permanent=not retryable,
        status=status,
        error=f"HTTP {status}: {response.text[:200]}",
        retry_after=parse_retry_after(response.headers.get("retry-after"), now)
        if retryable
        else None,
    )


class Worker(BackgroundLoop):
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        worker_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{ids.new_id('w', 6)}"
        self.backoff = Backoff(
            settings.notifier_backoff_base_seconds, settings.notifier_backoff_max_seconds
        )
        self._transport = transport
        super().__init__()
        self._last_purge = 0.0

    async def run(self) -> None:
        """Deliver until ``stop()``; the batch in flight is finished first."""
        self._alarm.arm()
        unsubscribe = recorded.subscribe(lambda _count: self.wake())
        log.info(
            "worker started",
            extra={"fields": {"worker": self.id, "target": self.settings.fin_webhook_target}},
        )
        try:
            async with self._client() as http:
                while not self._stopping:
                    try:
                        made = await self.run_once(http)
                        await self._maybe_purge()
                    except Exception:  # a database hiccup must not kill the worker
                        log.exception("worker round failed", extra={"fields": {"worker": self.id}})
                        made = 0
                        await self._sleep(self.settings.notifier_poll_seconds)
                        continue
                    if not made:
                        await self._sleep(await run_in_threadpool(self._seconds_until_due))
        finally:
            unsubscribe()
            log.info("worker stopped", extra={"fields": {"worker": self.id}})

    def _client(self) -> httpx.AsyncClient:
        concurrency = self.settings.notifier_concurrency
        return httpx.AsyncClient(
            timeout=self.settings.notifier_timeout_seconds,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,
            headers={"User-Agent": f"findesk/{__version__}"},
            transport=self._transport,
        )

    def _seconds_until_due(self) -> float:
        poll = self.settings.notifier_poll_seconds
        with self.db.read_session() as session:
            # Without Fin configured, only alerts (webhooks, emails) are delivered.
            due = repository.next_due_at(
                session, utcnow(), fin=self.settings.fin_webhook_target is not None
            )
        if due is None:
            return poll
        return min(poll, max(0.0, (as_utc(due) - utcnow()).total_seconds()))

    # --- one round --------------------------------------------------------------------------

    async def run_once(self, http: httpx.AsyncClient) -> int:
        """Claim up to ``notifier_concurrency`` conversations, deliver them, record the
        outcomes; returns how many webhook calls were made."""
        # Fin's events wait, recorded, until Fin is configured; alerts go meanwhile.
        target = self.settings.fin_webhook_target
        deliveries = await run_in_threadpool(self._claim)
        if not deliveries:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(http, target, d) for d in deliveries))
        await run_in_threadpool(self._record, list(zip(deliveries, outcomes, strict=True)))
        return len(deliveries)

    def _claim(self) -> list[Delivery]:
        from findesk.alerts import delivery as alerts  # it builds on this module

        now = utcnow()
        lease_until = now + timedelta(seconds=self.settings.notifier_lease_seconds)
        with self.db.transaction() as session:
            rows = repository.claim(
                session,
                owner=self.id,
                now=now,
                lease_until=lease_until,
                conversations=self.settings.notifier_concurrency,
                skip_locked=not self.db.is_sqlite,
                fin=self.settings.fin_webhook_target is not None,
            )
            groups: dict[str, list[OutboxEvent]] = {}
            for row in rows:
                groups.setdefault(row.conversation_id, []).append(row)
            deliveries = []
            fresh: dict[int, str] = {}  # event id -> its new delivery id
            for conversation_id, events in groups.items():
                if events[0].kind == CHAT_KIND and len(events) > 1:
                    # The chat's calls to Intercom go one at a time, in order (chat.delivery):
                    # the rest wait for the next round, or for this one's back-off to end.
                    repository.release(session, [e.id for e in events[1:]], self.id)
                    events = events[:1]
                delivery_id = next(
                    (e.delivery_id for e in events if e.delivery_id), None
                ) or ids.new_id("dlv")
                event_ids = [e.id for e in events]
                kind = events[0].kind
                prepared: Any = None
                if kind == CHAT_KIND:
                    from findesk.chat import delivery as chat  # it builds on this module

                    prepared = chat.prepare(session, self.settings, events[0])
                elif kind != FIN_KIND:
                    prepared = alerts.prepare(session, self.settings, conversation_id, events)
                fresh.update((e.id, delivery_id) for e in events if e.delivery_id is None)
                deliveries.append(
                    Delivery(
                        conversation_id=conversation_id,
                        event_ids=event_ids,
                        delivery_id=delivery_id,
                        attempts=max(e.attempts for e in events),
                        oldest_created_at=min(as_utc(e.created_at) for e in events),
                        first_failed_at=min(
                            (as_utc(e.first_failed_at) for e in events if e.first_failed_at),
                            default=None,
                        ),
                        kind=kind,
                        prepared=prepared,
                    )
                )
            repository.set_delivery_ids(session, fresh)
            return deliveries

    async def _attempt(
        self, http: httpx.AsyncClient, target: str | None, delivery: Delivery
    ) -> Outcome:
        """One delivery's call, timed. Whatever it raises fails this delivery alone, to be
        retried: the round's other outcomes are still recorded, and none of its events waits
        out its lease. (httpcore over anyio has raised AttributeError on a connection dropped
        as it opened.)"""
        started = time.perf_counter()
        try:
            outcome = await self._send(http, target, delivery)
        except Exception as exc:
            log.exception(
                "delivery raised",
                extra={"fields": {"worker": self.id, "delivery_id": delivery.delivery_id}},
            )
            outcome = Outcome(delivered=False, error=f"error: {type(exc).__name__}: {exc}")
        outcome.seconds = time.perf_counter() - started
        return outcome

    async def _send(
        self, http: httpx.AsyncClient, target: str | None, delivery: Delivery
    ) -> Outcome:
        if delivery.kind == CHAT_KIND:
            from findesk.chat import delivery as chat  # it builds on this module

            return await chat.send(http, self.settings, delivery.prepared)
        if delivery.kind != FIN_KIND or target is None:
            from findesk.alerts import delivery as alerts  # it builds on this module

            return await alerts.send(http, self.settings, delivery.prepared)
        key = self.settings.fin_webhook_key
        headers = {
            "X-Findesk-Delivery": delivery.delivery_id,
            "X-Findesk-Attempt": str(delivery.attempts + 1),
        }
        if key is not None:
            headers["X-Webhook-Key"] = key.get_secret_value()
        try:
            # httpx times each step (connect, write, read); this bounds the whole call, so that
            # it always ends well inside the lease.
            async with asyncio.timeout(self.settings.notifier_timeout_seconds):
                response = await http.post(
                    target, json={"conversation_id": delivery.conversation_id}, headers=headers
                )
            outcome = classify(response, utcnow())
        except (httpx.TimeoutException, TimeoutError) as exc:
            outcome = Outcome(delivered=False, error=f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            outcome = Outcome(delivered=False, error=f"network: {type(exc).__name__}: {exc}")
        return outcome

    def _record(self, results: list[tuple[Delivery, Outcome]]) -> None:
        now = utcnow()
        window = self.settings.notifier_retry_window_seconds
        with self.db.transaction() as session:
            # One statement for all the deliveries that succeeded (most rounds: all of them).
            delivered = [i for d, o in results if o.delivered for i in d.event_ids]
            if delivered:
                repository.mark_delivered(session, delivered, self.id, now)
            for delivery, outcome in results:
                if outcome.delivered:
                    kind = "delivered"
                else:
                    failing_since = delivery.first_failed_at or now
                    expired = (now - failing_since).total_seconds() > window
                    dead = outcome.permanent or expired
                    delay = self.backoff.delay(delivery.attempts, outcome.retry_after)
                    repository.mark_failed(
                        session,
                        delivery.event_ids,
                        self.id,
                        now=now,
                        dead=dead,
                        next_attempt_at=now + timedelta(seconds=delay),
                        error=outcome.error,
                    )
                    kind = "dead" if dead else "retry"
                    if dead and delivery.kind == CHAT_KIND:
                        from findesk.chat import delivery as chat  # it builds on this module

                        chat.gave_up(session, delivery.conversation_id, outcome.error)
                self._observe(delivery, outcome, kind, now)

    def _observe(self, delivery: Delivery, outcome: Outcome, kind: str, now: datetime) -> None:
        metrics.DELIVERIES.labels(kind).inc()
        if kind == "delivered":
            metrics.EVENTS_DELIVERED.inc(len(delivery.event_ids))
            metrics.DELIVERY_LATENCY.observe((now - delivery.oldest_created_at).total_seconds())
        elif kind == "dead":
            metrics.EVENTS_DEAD.inc(len(delivery.event_ids))
        log.log(
            logging.INFO if kind == "delivered" else logging.WARNING,
            "delivery %s",
            kind,
            extra={
                "fields": {
                    "worker": self.id,
                    "delivery_id": delivery.delivery_id,
                    "conversation_id": delivery.conversation_id,
                    "events": len(delivery.event_ids),
                    "attempt": delivery.attempts + 1,
                    "outcome": kind,
                    "status": outcome.status,
                    "error": outcome.error or None,
                    "duration_ms": round(outcome.seconds * 1000, 1),
                }
            },
        )

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = time.monotonic()
        before = utcnow() - timedelta(days=self.settings.outbox_retention_days)

        def purge() -> int:
            with self.db.transaction() as session:
                return repository.purge_delivered(session, before)

        purged = await run_in_threadpool(purge)
        if purged:
            log.info("purged delivered events", extra={"fields": {"count": purged}})
