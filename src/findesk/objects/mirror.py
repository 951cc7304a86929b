"""Keeping Intercom's Custom Object Instances (spec 4) in step with the instances of findesk's
custom object types marked "mirror to Intercom".

Each instance is upserted by its external id (``POST /custom_object_instances/{type}`` with
``external_id``, ``external_created_at``, ``external_updated_at`` and ``custom_attributes``, all
sent every time: Intercom's upsert is keyed on the external id, so a retry or a race never
makes a duplicate). A change marks the instance ``intercom_pending`` in the transaction that
made it (``service.upsert_instance``, the import, turning the flag on); a delete leaves a
tombstone (``IntercomObjectDelete``) in the same transaction, so that it is never lost. What was
last sent is remembered as a fingerprint, so an unchanged instance costs no request.

A pass sends the pending instances (``full``: every instance of a mirrored type, resending
each), then deletes what the tombstones name (``DELETE …?external_id=``; 404 counts as done; a
tombstone whose external id exists again is dropped, the upsert having updated Intercom's
copy). HTTP happens outside database transactions; each instance's result is written in its own
short transaction, and an instance changed meanwhile stays pending. One pass at a time per
database (a PostgreSQL advisory lock; a lock per database within one process).

Failures: 429 is waited out by the client and transient errors retried a few times there; what
remains is recorded on the instance (``intercom_error``, ``intercom_attempts``) and retried after
``kb_retry_seconds * 2^(attempts-1)`` (at most an hour). Other 4xx (such as ``TypeNotFound``,
when the type is not defined in Intercom) are recorded and not retried until the instance
changes or ``--full``. A refused token ends the pass. Turning the flag off leaves Intercom's
copies as they are.

``MirrorLoop`` runs passes in the background, beside the knowledge publisher (same settings:
``FINDESK_INTERCOM_ACCESS_TOKEN``, ``FINDESK_KB_PUBLISH_IN_PROCESS``), woken by
``service.mirror_requested`` after commits and otherwise every few seconds for due retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from findesk.kit.commit_signal import PassLoop
from findesk.kit.db import Database
from findesk.kit.exclusive import exclusive
from findesk.kit.settings import Settings
from findesk.kit.timeutil import as_utc, utcnow
from findesk.knowledge.content_api import ApiStats, ContentApiError, IntercomJob, Stopped
from findesk.objects import repository
from findesk.objects.models import ObjectInstance
from findesk.objects.service import mirror_requested

log = logging.getLogger("findesk.objects.mirror")

ADVISORY_LOCK_KEY = 0x66696E6F62  # b"finob": one mirror pass per database at a time
MAX_RETRY_SECONDS = 3600.0
MAX_ERROR_LENGTH = 2000
BATCH = 1000

Progress = Callable[[int, int], None]


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(as_utc(value).timestamp())


def instance_body(instance: ObjectInstance) -> dict[str, Any]:
    return {
        "external_id": instance.external_id,
        "external_created_at": _unix(instance.external_created_at),
        "external_updated_at": _unix(instance.external_updated_at),
        "custom_attributes": dict(instance.custom_attributes or {}),
    }


def fingerprint(type_identifier: str, body: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"type": type_identifier, **body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def retry_delay(settings: Settings, attempts: int) -> float:
    return float(min(MAX_RETRY_SECONDS, settings.kb_retry_seconds * 2 ** min(attempts - 1, 32)))


@dataclass
class MirrorSummary:
    full: bool = False
    instances: int = 0  # looked at
    sent: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    requests: int = 0
    rate_limited: int = 0
    paced: int = 0
    seconds: float = 0.0
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> str:
        line = (
            f"{self.sent} sent, {self.unchanged} unchanged, {self.deleted} deleted, "
            f"{self.failed} failed; {self.requests} requests, "
            f"{self.rate_limited} rate-limited (429) in {self.seconds:.1f} s"
        )
        return line if self.error is None else f"{line}; stopped: {self.error}"


class Mirror(IntercomJob):
    """Runs mirroring passes (thread-safe, one pass at a time)."""

    purpose = "mirroring custom objects"

    def sync(
        self,
        full: bool = False,
        progress: Progress | None = None,
        *,
        due_only: bool = False,
        wait: bool = True,
    ) -> MirrorSummary:
        summary = MirrorSummary(full=full)
        started = time.perf_counter()
        before = self._stats()
        with exclusive(self.db, ADVISORY_LOCK_KEY, wait=wait, stop=self._stop) as acquired:
            if not acquired:
                summary.skipped = True
                return summary
            try:
                self._pass(summary, full=full, due_only=due_only, progress=progress)
            except Stopped:
                summary.error = "stopped"
            except ContentApiError as exc:  # the token is refused
                summary.error = exc.message
        after = self._stats()
        summary.requests = after.requests - before.requests
        summary.rate_limited = after.rate_limited - before.rate_limited
        summary.paced = after.paced - before.paced
        summary.seconds = time.perf_counter() - started
        if summary.sent or summary.deleted or not summary.ok:
            log.log(
                logging.INFO if summary.ok else logging.WARNING,
                "objects mirror pass",
                extra={"fields": summary.to_dict()},
            )
        return summary

    def seconds_until_due(self, ceiling: float) -> float:
        with self.db.read_session() as session:
            due = repository.earliest_mirror_retry(session)
        if due is None:
            return ceiling
        return min(ceiling, max(0.0, (as_utc(due) - utcnow()).total_seconds()))

    def _stats(self) -> ApiStats:
        stats = self.client.stats
        return ApiStats(stats.requests, stats.rate_limited, stats.paced, stats.waited_seconds)

    # --- a pass -------------------------------------------------------------------------------

    def _pass(
        self, summary: MirrorSummary, *, full: bool, due_only: bool, progress: Progress | None
    ) -> None:
        seen: set[str] = set()
        total = 0
        everything = full
        while True:
            due_before = utcnow() if due_only else None
            with self.db.read_session() as session:
                ids = repository.mirror_candidates(
                    session,
                    due_before=due_before,
                    everything=everything,
                    limit=10**9 if everything else BATCH + len(seen),
                )
            everything = False
            batch = [i for i in ids if i not in seen]
            if not batch:
                break
            seen.update(batch)
            total += len(batch)
            for instance_id in batch:
                self._instance(instance_id, summary, full)
                summary.instances += 1
                if progress is not None:
                    progress(summary.instances, total)
        done: set[tuple[str, str]] = set()
        while True:
            with self.db.read_session() as session:
                due = utcnow() if due_only else None
                tombstones = [
                    (t.type_identifier, t.external_id)
                    for t in repository.intercom_deletes(
                        session, due_before=due, limit=BATCH + len(done)
                    )
                ]
            tombstones = [t for t in tombstones if t not in done]
            if not tombstones:
                return
            for identifier, external_id in tombstones:
                done.add((identifier, external_id))
                self._delete(identifier, external_id, summary)

    def _instance(self, instance_id: str, summary: MirrorSummary, full: bool) -> None:
        with self.db.read_session() as session:
            instance = session.get(ObjectInstance, instance_id)
            if instance is None or not instance.object_type.mirror_to_intercom:
                return
            identifier = instance.object_type.identifier
            body = instance_body(instance)
            snapshot = instance.updated_at
            known_hash = instance.intercom_hash
        digest = fingerprint(identifier, body)
        if known_hash == digest and not full:
            self._save(instance_id, snapshot, lambda row, current: _settled(row, current))
            summary.unchanged += 1
            return
        try:
            answer = self.client.request(
                "POST", f"/custom_object_instances/{quote(identifier, safe='')}", body
            ).json()
        except ContentApiError as exc:
            if exc.unauthorized:
                raise
            summary.failed += 1
            self._failed(instance_id, snapshot, exc)
            return
        intercom_id = str(answer.get("id")) if isinstance(answer, dict) else None

        def sent(row: ObjectInstance, current: bool) -> None:
            row.intercom_id, row.intercom_hash = intercom_id, digest
            _settled(row, current)

        self._save(instance_id, snapshot, sent)
        summary.sent += 1

    def _delete(self, identifier: str, external_id: str, summary: MirrorSummary) -> None:
        with self.db.read_session() as session:
            back = repository.instance_exists(session, identifier, external_id)
        if not back:
            try:
                self.client.request(
                    "DELETE",
                    f"/custom_object_instances/{quote(identifier, safe='')}",
                    params={"external_id": external_id},
                )
                summary.deleted += 1
            except ContentApiError as exc:
                if exc.unauthorized:
                    raise
                if exc.status != 404:  # gone already (or its type): done
                    summary.failed += 1
                    self._delete_failed(identifier, external_id, exc)
                    return
        with self.db.transaction() as session:
            row = repository.intercom_delete_for_update(session, identifier, external_id)
            if row is not None:
                session.delete(row)

    # --- results ------------------------------------------------------------------------------

    def _save(
        self,
        instance_id: str,
        snapshot: datetime,
        change: Callable[[ObjectInstance, bool], object],
    ) -> None:
        with self.db.transaction() as session:
            row = repository.instance_for_update(session, instance_id)
            if row is None:
                return
            change(row, row.updated_at == snapshot)

    def _failed(self, instance_id: str, snapshot: datetime, exc: ContentApiError) -> None:
        now = utcnow()

        def failed(row: ObjectInstance, current: bool) -> None:
            row.intercom_error = exc.message[:MAX_ERROR_LENGTH]
            if not current:
                return  # changed meanwhile: pending with the schedule the change set
            row.intercom_attempts = (row.intercom_attempts or 0) + 1
            if exc.transient:
                delay = retry_delay(self.settings, row.intercom_attempts)
                row.intercom_next_attempt_at = now + timedelta(seconds=delay)
                row.intercom_pending = True
            else:
                row.intercom_next_attempt_at = None
                row.intercom_pending = False

        self._save(instance_id, snapshot, failed)
        log.warning(
            "objects mirror failed",
            extra={"fields": {"instance_id": instance_id, "error": exc.message}},
        )

    def _delete_failed(self, identifier: str, external_id: str, exc: ContentApiError) -> None:
        now = utcnow()
        with self.db.transaction() as session:
            row = repository.intercom_delete_for_update(session, identifier, external_id)
            if row is None:
                return
            row.attempts = (row.attempts or 0) + 1
            row.error = exc.message[:MAX_ERROR_LENGTH]
            delay = retry_delay(self.settings, row.attempts)
            row.next_attempt_at = now + timedelta(seconds=delay)


def _settled(row: ObjectInstance, current: bool) -> None:
    if current:
        row.intercom_pending = False
        row.intercom_attempts = 0
        row.intercom_next_attempt_at = None
        row.intercom_error = None


class MirrorLoop(PassLoop):
    """Mirrors pending instances in the background until ``stop()``: at once when woken by a
    commit that marked some, else every ``poll_seconds`` for retries that became due."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        poll_seconds: float = 5.0,
        mirror: Mirror | None = None,
    ) -> None:
        self.mirror = mirror or Mirror(db, settings)
        super().__init__(
            self.mirror,
            mirror_requested,
            name="objects mirror",
            poll_seconds=poll_seconds,
            retry_seconds=settings.kb_retry_seconds,
        )
