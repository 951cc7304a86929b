"""Keeping Intercom's Data Connectors (spec 9) in step with findesk's lookups, and reading their
execution results back.

``sync_connectors`` takes the definitions (``schemas.ConnectorDefinition``, one per lookup, by
its ``key``) and, per definition:

* none in Intercom yet: a fresh token is minted (``mint_token``) and the connector is created in
  draft with ``Authorization: Bearer <token>`` in its headers, then set live with a PATCH
  ``{"state": "live"}``. The row is written with ``state = "creating"`` *before* the create, and
  the create is not retried blindly on a transient failure (the connector may exist while its
  answer was lost): a later sync that finds a row still ``creating`` adopts the connector of
  that name (and URL) which no other row claims, with a new token, instead of making a second.
* known and unchanged (same fingerprint of what was last sent, and live): nothing is sent.
* changed: one PATCH with only the fields that differ from what was last sent, plus
  ``state: "live"``, which publishes them (Intercom's PATCH edits the draft; setting live
  publishes it).
* deleted on Intercom's side (404 on the PATCH or on reading its results): created again, with a
  new token (findesk keeps only token hashes, so an old one cannot be sent again).

A definition that disappeared (its lookup was deleted) has its connector set to draft (when
live) and deleted. Intercom answers 409 ``data_connector_in_use`` while Fin relies on it: the
row stays (``removed``, ``delete_refused_at``, ``last_error``) and the next sync tries again.

Execution results are read back after the definitions (``read_results``): per connector, those
since it was last read (``start_ts`` = the last read's ``end_ts``, both inclusive, so nothing
falls between two reads; result ids make it idempotent), into ``intercom_connector_executions``
(the ``HISTORY`` most recent kept per connector) and the connector's summary columns.

HTTP goes through ``ContentApiClient.request`` (429 waited out with ``X-RateLimit-Reset``,
transient failures retried, requests counted) with ``Intercom-Version: 2.16``
(``CONNECTORS_VERSION``: the first numbered version with Data Connectors), outside database
transactions; each connector's result is saved in its own short transaction. One sync runs at a
time per database: a PostgreSQL advisory lock, a lock per database within one process on SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx

from findesk.connectors import repository
from findesk.connectors.models import IntercomConnector, IntercomConnectorExecution
from findesk.connectors.schemas import ConnectorDefinition, DefinitionsFor, MintToken
from findesk.kit.db import Database
from findesk.kit.exclusive import exclusive
from findesk.kit.settings import Settings
from findesk.kit.timeutil import utcnow
from findesk.knowledge.content_api import ContentApiError, IntercomJob, Stopped

log = logging.getLogger("findesk.connectors")

CONNECTORS_VERSION = "2.16"
ADVISORY_LOCK_KEY = 0x66696E6463  # b"findc": one connector sync per database at a time
HISTORY = 50  # execution results kept per connector
RESULTS_PER_PAGE = 30
FIRST_READ_SECONDS = 3600  # a connector never read: the API's default window, the last hour
MAX_ERROR_LENGTH = 2000
MISSING = object()

Progress = Callable[[int, int], None]  # (connectors done, connectors to do)


def fingerprint(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_fields(sent: dict[str, Any] | None, payload: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``payload`` that differ from what was last sent."""
    before = sent or {}
    return {name: value for name, value in payload.items() if before.get(name, MISSING) != value}


@dataclass
class ConnectorSyncSummary:
    definitions: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    recreated: int = 0  # deleted on Intercom's side, made again
    adopted: int = 0  # a create whose answer was lost, found and taken over
    deleted: int = 0
    delete_refused: int = 0  # in use: kept, tried again on a later sync
    failed: int = 0
    results_read: int = 0  # new execution results stored
    requests: int = 0
    rate_limited: int = 0
    paced: int = 0
    seconds: float = 0.0
    error: str | None = None  # why the sync stopped early
    skipped: bool = False  # another sync was running (wait=False)
    failures: dict[str, str] = field(default_factory=dict)  # key -> error

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> str:
        line = (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.recreated} recreated, {self.deleted} deleted, "
            f"{self.delete_refused} kept (in use), {self.failed} failed; "
            f"{self.results_read} new execution results; {self.requests} requests, "
            f"{self.rate_limited} rate-limited (429) in {self.seconds:.1f} s"
        )
        return line if self.error is None else f"{line}; stopped: {self.error}"


@dataclass(frozen=True)
class _Known:
    """A snapshot of a connector's row, read outside any write transaction."""

    key: str
    name: str
    intercom_id: str | None
    state: str | None
    sent: dict[str, Any] | None
    fingerprint: str | None
    removed: bool
    results_read_until: int | None


def _known(row: IntercomConnector) -> _Known:
    return _Known(
        key=row.key,
        name=row.name,
        intercom_id=row.intercom_id,
        state=row.state,
        sent=row.sent,
        fingerprint=row.fingerprint,
        removed=row.removed,
        results_read_until=row.results_read_until,
    )


class _Aborted(Exception):
    """Nothing more can be done in this sync (the token is refused)."""


class ConnectorSync(IntercomJob):
    """Runs connector syncs against one Intercom workspace (its own HTTP client)."""

    purpose = "syncing Data Connectors"
    version = CONNECTORS_VERSION
    _listed: list[dict[str, Any]] | None = None  # Intercom's connectors, listed once a sync

    # --- a sync -------------------------------------------------------------------------------

    def sync(
        self,
        definitions_for: DefinitionsFor,
        mint_token: MintToken,
        progress: Progress | None = None,
        *,
        read_results: bool = True,
        wait: bool = True,
    ) -> ConnectorSyncSummary:
        summary = ConnectorSyncSummary()
        started = time.perf_counter()
        before = (self.client.stats.requests, self.client.stats.rate_limited)
        paced_before = self.client.stats.paced
        with exclusive(self.db, ADVISORY_LOCK_KEY, wait=wait, stop=self._stop) as acquired:
            if not acquired:
                summary.skipped = True
                return summary
            self._listed = None
            try:
                self._pass(definitions_for, mint_token, summary, progress, read_results)
            except Stopped:
                summary.error = "stopped"
            except _Aborted as exc:
                summary.error = str(exc)
        summary.requests = self.client.stats.requests - before[0]
        summary.rate_limited = self.client.stats.rate_limited - before[1]
        summary.paced = self.client.stats.paced - paced_before
        summary.seconds = time.perf_counter() - started
        log.log(
            logging.INFO if summary.ok else logging.WARNING,
            "connectors sync",
            extra={"fields": summary.to_dict()},
        )
        return summary

    def _pass(
        self,
        definitions_for: DefinitionsFor,
        mint_token: MintToken,
        summary: ConnectorSyncSummary,
        progress: Progress | None,
        read_results: bool,
    ) -> None:
        with self.db.read_session() as session:
            definitions = list(definitions_for(session))
            known = {row.key: _known(row) for row in repository.all_connectors(session)}
        by_key: dict[str, ConnectorDefinition] = {}
        for definition in definitions:
            if definition.key in by_key:
                raise ValueError(f"two connector definitions share the key {definition.key!r}")
            by_key[definition.key] = definition
        gone = [k for k in known if k not in by_key]
        summary.definitions = len(by_key)
        total = len(by_key) + len(gone)
        done = 0
        if progress is not None:
            progress(0, total)

        def step(key: str, work: Callable[[], str | None]) -> None:
            nonlocal done
            try:
                outcome = work()
                if outcome is not None:
                    setattr(summary, outcome, getattr(summary, outcome) + 1)
            except ContentApiError as exc:
                if exc.unauthorized:
                    raise _Aborted(exc.message) from exc
                summary.failed += 1
                summary.failures[key] = exc.message
                self._save_error(key, exc.message)
                log.warning(
                    "connector sync failed",
                    extra={"fields": {"key": key, "error": exc.message, "status": exc.status}},
                )
            done += 1
            if progress is not None:
                progress(done, total)

        for key, definition in by_key.items():
            step(key, partial(self._put, definition, known.get(key), mint_token))
        for key in gone:
            step(key, partial(self._remove, known[key]))
        if not read_results:
            return
        with self.db.read_session() as session:
            current = [_known(row) for row in repository.all_connectors(session)]
        for row in current:
            if row.intercom_id is None or row.removed or row.key not in by_key:
                continue
            try:
                read, recreated = self._read_results(row, by_key[row.key], mint_token)
                summary.results_read += read
                summary.recreated += recreated
            except ContentApiError as exc:
                if exc.unauthorized:
                    raise _Aborted(exc.message) from exc
                summary.failed += 1
                summary.failures[row.key] = exc.message
                self._save_error(row.key, exc.message)

    # --- one definition -----------------------------------------------------------------------

    def _put(
        self, definition: ConnectorDefinition, known: _Known | None, mint_token: MintToken
    ) -> str:
        payload = definition.payload()
        digest = fingerprint(payload)
        if known is None or known.intercom_id is None:
            adopt = known is not None and known.state == "creating"
            return self._create(definition, mint_token, adopt=adopt)
        if known.fingerprint == digest and known.state == "live" and not known.removed:
            self._save(definition.key, lambda row: _clear_error(row))
            return "unchanged"
        body = {**changed_fields(known.sent, payload), "state": "live"}
        try:
            self.client.request("PATCH", f"/data_connectors/{known.intercom_id}", body)
        except ContentApiError as exc:
            if exc.status != 404:
                raise
            self._create(definition, mint_token, adopt=False)
            return "recreated"

        def patched(row: IntercomConnector) -> None:
            row.name, row.sent, row.fingerprint = definition.name, payload, digest
            row.state, row.removed, row.delete_refused_at = "live", False, None
            _clear_error(row)

        self._save(definition.key, patched)
        return "updated"

    def _create(
        self, definition: ConnectorDefinition, mint_token: MintToken, *, adopt: bool
    ) -> str:
        payload = definition.payload()
        digest = fingerprint(payload)
        key = definition.key
        with self.db.transaction() as session:
            token = mint_token(session, key)
            row = repository.get_for_update(session, key)
            if row is None:
                row = IntercomConnector(key=key, name=definition.name)
                session.add(row)
            row.name, row.intercom_id, row.state = definition.name, None, "creating"
            row.sent = row.fingerprint = None
            row.removed, row.delete_refused_at = False, None
            row.results_read_until = None
            row.updated_at = utcnow()
        headers = [{"name": "Authorization", "value": f"Bearer {token}"}]
        found = self._find_lost_create(definition) if adopt else None
        outcome = "created"
        if found is not None:
            # Taken over: everything is sent again, with the new token, and published at once.
            intercom_id = found
            self.client.request(
                "PATCH",
                f"/data_connectors/{intercom_id}",
                {**payload, "headers": headers, "state": "live"},
            )
            outcome = "adopted"
        else:
            try:
                answer = self.client.request(
                    "POST", "/data_connectors", {**payload, "headers": headers}, retry=False
                ).json()
            except ContentApiError as exc:
                if not exc.transient:  # refused: nothing was made, nothing to adopt later
                    self._save(key, lambda row: setattr(row, "state", None))
                raise
            intercom_id = str(answer["id"])
            if self._listed is not None:
                self._listed.append(answer)

        def created(row: IntercomConnector) -> None:
            row.intercom_id, row.sent, row.fingerprint = intercom_id, payload, digest
            row.state = "live" if found is not None else "draft"
            row.results_read_until = int(time.time()) - 1
            _clear_error(row)

        self._save(key, created)
        if found is None:
            self.client.request("PATCH", f"/data_connectors/{intercom_id}", {"state": "live"})
            self._save(key, lambda row: setattr(row, "state", "live"))
        log.info(
            "data connector created",
            extra={"fields": {"key": key, "intercom_id": intercom_id, "how": outcome}},
        )
        return outcome

    def _find_lost_create(self, definition: ConnectorDefinition) -> str | None:
        """The connector a create whose answer was lost made: same name and URL, claimed by no
        row."""
        if self._listed is None:
            self._listed = list(self._list_all())
        with self.db.read_session() as session:
            claimed = {r.intercom_id for r in repository.all_connectors(session) if r.intercom_id}
        for item in self._listed:
            item_id = str(item.get("id"))
            if (
                item_id not in claimed
                and item.get("name") == definition.name
                and item.get("url") == definition.url
            ):
                return item_id
        return None

    def _list_all(self) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"per_page": 50}
            if cursor:
                params["starting_after"] = cursor
            body = self.client.request("GET", "/data_connectors", params=params).json()
            yield from body.get("data") or []
            cursor = ((body.get("pages") or {}).get("next") or {}).get("starting_after")
            if not cursor:
                return

    # --- a definition that disappeared --------------------------------------------------------

    def _remove(self, known: _Known) -> str | None:
        key = known.key
        if not known.removed:
            self._save(key, lambda row: setattr(row, "removed", True))
        if known.intercom_id is None:
            self._drop(key)
            return "deleted" if known.state is not None else None
        path = f"/data_connectors/{known.intercom_id}"
        try:
            if known.state != "draft":
                self.client.request("PATCH", path, {"state": "draft"})
                self._save(key, lambda row: setattr(row, "state", "draft"))
            try:
                self.client.request("DELETE", path)
            except ContentApiError as exc:
                if exc.status != 409 or exc.code != "conflict":
                    raise
                # Set live again meanwhile (in Intercom's UI): to draft, then delete.
                self.client.request("PATCH", path, {"state": "draft"})
                self.client.request("DELETE", path)
        except ContentApiError as exc:
            if exc.status == 404:
                self._drop(key)
                return "deleted"
            if exc.status == 409 and exc.code == "data_connector_in_use":
                now, message = utcnow(), exc.message[:MAX_ERROR_LENGTH]

                def refused(row: IntercomConnector) -> None:
                    row.delete_refused_at = now
                    row.last_error, row.last_error_at = message, now

                self._save(key, refused)
                log.info("data connector in use: kept", extra={"fields": {"key": key}})
                return "delete_refused"
            raise
        self._drop(key)
        return "deleted"

    # --- execution results --------------------------------------------------------------------

    def _read_results(
        self, known: _Known, definition: ConnectorDefinition, mint_token: MintToken
    ) -> tuple[int, int]:
        """(new results stored, 1 if the connector had to be made again)."""
        end = int(time.time())
        start = known.results_read_until
        if start is None:
            start = end - FIRST_READ_SECONDS
        path = f"/data_connectors/{known.intercom_id}/execution_results"
        results: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            while True:
                params: dict[str, Any] = {
                    "per_page": RESULTS_PER_PAGE,
                    "start_ts": start,
                    "end_ts": end,
                }
                if cursor:
                    params["starting_after"] = cursor
                body = self.client.request("GET", path, params=params).json()
                results += body.get("data") or []
                cursor = ((body.get("pages") or {}).get("next") or {}).get("starting_after")
                if not cursor or len(results) >= HISTORY * 20:
                    break
        except ContentApiError as exc:
            if exc.status != 404:
                raise
            # Deleted on Intercom's side: made again (with a new token).
            self._create(definition, mint_token, adopt=False)
            return 0, 1
        return self._store_results(known.key, results, end), 0

    def _store_results(self, key: str, results: list[dict[str, Any]], end: int) -> int:
        parsed = [p for item in results if (p := _execution(key, item)) is not None]
        with self.db.transaction() as session:
            row = repository.get_for_update(session, key)
            if row is None:
                return 0
            seen = repository.known_result_ids(session, key, [p.result_id for p in parsed])
            fresh = {p.result_id: p for p in parsed if p.result_id not in seen}
            for execution in fresh.values():
                session.add(execution)
            newest = sorted(fresh.values(), key=lambda e: e.executed_at)
            for execution in newest:
                if execution.success:
                    row.executions_succeeded += 1
                    row.last_success_at = execution.executed_at
                else:
                    row.executions_failed += 1
                    row.last_failure_at = execution.executed_at
                    row.last_error_type = execution.error_type
                row.last_http_status = execution.http_status
                row.last_execution_ms = execution.execution_time_ms
            row.results_read_until = end
            session.flush()
            if fresh:
                repository.trim_history(session, key, HISTORY)
            return len(fresh)

    # --- plumbing -----------------------------------------------------------------------------

    def _save(self, key: str, change: Callable[[IntercomConnector], object]) -> None:
        with self.db.transaction() as session:
            row = repository.get_for_update(session, key)
            if row is None:
                return
            change(row)
            row.synced_at = row.updated_at = utcnow()

    def _save_error(self, key: str, message: str) -> None:
        now = utcnow()

        def failed(row: IntercomConnector) -> None:
            row.last_error, row.last_error_at = message[:MAX_ERROR_LENGTH], now

        self._save(key, failed)

    def _drop(self, key: str) -> None:
        with self.db.transaction() as session:
            row = repository.get_for_update(session, key)
            if row is not None:
                session.delete(row)


def _clear_error(row: IntercomConnector) -> None:
    row.last_error = row.last_error_at = None


def _execution(key: str, item: dict[str, Any]) -> IntercomConnectorExecution | None:
    try:
        executed_at = datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00"))
        result_id = str(item["id"])
    except (KeyError, ValueError):
        return None
    if executed_at.tzinfo is None:
        executed_at = executed_at.replace(tzinfo=UTC)

    def number(name: str) -> int | None:
        value = item.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def string(name: str, limit: int) -> str | None:
        value = item.get(name)
        return None if value is None else str(value)[:limit]

    return IntercomConnectorExecution(
        key=key,
        result_id=result_id[:64],
        success=bool(item.get("success")),
        http_status=number("http_status"),
        error_type=string("error_type", 64),
        error_message=string("error_message", MAX_ERROR_LENGTH),
        execution_time_ms=number("execution_time_ms"),
        source_type=string("source_type", 32),
        conversation_id=string("conversation_id", 64),
        executed_at=executed_at,
    )


def sync_connectors(
    db: Database,
    settings: Settings,
    definitions_for: DefinitionsFor,
    mint_token: MintToken,
    progress: Progress | None = None,
    *,
    read_results: bool = True,
    transport: httpx.BaseTransport | None = None,
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
    pace: bool = True,
) -> ConnectorSyncSummary:
    """One sync of every definition with Intercom (for ``findesk connectors sync`` and the admin
    page's "Sync to Intercom" button); waits for a sync already running to finish."""
    with ConnectorSync(
        db, settings, transport=transport, retry_delays=retry_delays, pace=pace
    ) as syncer:
        return syncer.sync(definitions_for, mint_token, progress, read_results=read_results)
