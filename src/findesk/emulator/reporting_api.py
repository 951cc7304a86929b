"""An emulation of Intercom's Reporting Data Export API (spec 5), served on the AI Content
emulator's app (``include_reporting``), so that it shares the bearer auth, the per-token rate
limit, request ids and the ``error.list`` shape. Its rows come from the emulator's own record of
Fin's sync runs (``reporting_store``).

Where Intercom's text is silent this module decides, and says so here:

Datasets
    ``conversation`` (one row per conversation, by ``conversation_started_at``, its default
    time attribute) and ``admin_status_change`` (listed for realism; its files are empty).
    Attribute ids are the 2.14 ones (``conversation_id``, ``conversation_started_at``: the
    ids of Intercom's examples); ``get_datasets`` also gives each a ``qualified_id`` (Preview's
    ``standard.…``/``timestamp.…`` form) and enqueue accepts either. The Fin attributes
    (``fin_ai_agent_participated``, ``fin_ai_agent_resolution_state``,
    ``fin_ai_agent_resolved_at``, ``fin_ai_agent_routed_to_team_at``) and
    ``external_reference_id`` (the conversation's ``external_references[].id``: the helpdesk's
    own conversation id) are named by the emulator: Intercom's public list of them is not
    published.

Enqueue
    Every field is required and checked in order: ``dataset_id``, ``attribute_ids``,
    ``start_time``, ``end_time``; 400 ``bad_request`` with Intercom's messages ("'dataset_id'
    is a required parameter", "X is not a valid dataset_id", "attribute_ids must contain at
    least one attribute_id", "attribute_ids invalid for conversation dataset: a, b") and, in
    the same style, "'start_time' must be a Unix timestamp in seconds" and "'end_time' must be
    after 'start_time'". The range is [start_time, end_time). With ``PENDING_LIMIT`` jobs
    pending: 429 ``rate_limit_exceeded`` "Exceeded rate limit of 5 pending reporting dataset
    export jobs".

Job status and download
    ``app_id``, ``client_id`` (status only) and ``job_identifier`` query parameters are required
    (any non-empty value; ``job_identifier`` must equal the path's); an unknown job is 404
    ``not_found`` "Export job not found for identifier". ``download_url`` and
    ``download_expires_at`` (Unix seconds, as a string: an hour after completion) are empty
    strings until the job is complete. Download needs ``Accept: application/octet-stream``
    (else 406 ``not_acceptable``); a job not complete is 400 ``bad_request`` "Export job is not
    complete". The file is a gzipped CSV (``application/octet-stream``): a header of the
    requested attribute ids (in the order requested, as 2.14 ids), one row per conversation;
    times as Unix seconds, booleans ``true``/``false``, missing values empty.
"""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from findesk.emulator.content_api import ApiError, json_object
from findesk.emulator.reporting_store import ExportJob, FinOutcome, ReportingStore

PENDING_LIMIT = 5
DOWNLOAD_HOURS = 1

# (id, name, qualified prefix)
CONVERSATION_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("conversation_id", "Conversation ID", "standard"),
    ("conversation_started_at", "Conversation started at", "timestamp"),
    ("external_reference_id", "External reference", "standard"),
    ("conversation_state", "Conversation state", "standard"),
    ("fin_ai_agent_participated", "Fin AI Agent participated", "standard"),
    ("fin_ai_agent_resolution_state", "Fin AI Agent resolution state", "standard"),
    ("fin_ai_agent_resolved_at", "Fin AI Agent resolution time", "timestamp"),
    ("fin_ai_agent_routed_to_team_at", "Fin AI Agent routed to team at", "timestamp"),
)
ADMIN_STATUS_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("teammate_id", "Teammate ID", "standard"),
    ("status_started_at", "Status started at", "timestamp"),
    ("status", "Status", "standard"),
)
DATASETS: dict[str, dict[str, Any]] = {
    "conversation": {
        "name": "Conversation",
        "description": "One row per conversation, with Fin AI Agent outcomes.",
        "default_time_attribute_id": "conversation_started_at",
        "attributes": CONVERSATION_ATTRIBUTES,
    },
    "admin_status_change": {
        "name": "Teammate status period",
        "description": "Teammates' away and active status periods.",
        "default_time_attribute_id": "status_started_at",
        "attributes": ADMIN_STATUS_ATTRIBUTES,
    },
}


def _bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def _attribute_id(dataset: dict[str, Any], given: Any) -> str | None:
    """The 2.14 id of ``given`` (a 2.14 id or a qualified one), None when unknown."""
    if not isinstance(given, str):
        return None
    for attribute_id, _name, prefix in dataset["attributes"]:
        if given in (attribute_id, f"{prefix}.{attribute_id}"):
            return str(attribute_id)
    return None


def datasets_json() -> dict[str, Any]:
    return {
        "type": "list",
        "data": [
            {
                "id": dataset_id,
                "name": d["name"],
                "description": d["description"],
                "default_time_attribute_id": d["default_time_attribute_id"],
                "attributes": [
                    {"id": a, "name": n, "qualified_id": f"{p}.{a}"} for a, n, p in d["attributes"]
                ],
            }
            for dataset_id, d in DATASETS.items()
        ],
    }


def _time(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if value is None:
        raise _bad(f"'{field}' is a required parameter")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise _bad(f"'{field}' must be a Unix timestamp in seconds")
    return value


def _validated(body: dict[str, Any]) -> tuple[str, list[str], int, int]:
    dataset_id = body.get("dataset_id")
    if dataset_id is None or dataset_id == "":
        raise _bad("'dataset_id' is a required parameter")
    if not isinstance(dataset_id, str) or dataset_id not in DATASETS:
        raise _bad(f"{dataset_id} is not a valid dataset_id")
    dataset = DATASETS[dataset_id]
    attribute_ids = body.get("attribute_ids")
    if attribute_ids is None:
        raise _bad("'attribute_ids' is a required parameter")
    if not isinstance(attribute_ids, list) or not attribute_ids:
        raise _bad("attribute_ids must contain at least one attribute_id")
    invalid = [str(a) for a in attribute_ids if _attribute_id(dataset, a) is None]
    if invalid:
        raise _bad(f"attribute_ids invalid for {dataset_id} dataset: {', '.join(invalid)}")
    start_time = _time(body, "start_time")
    end_time = _time(body, "end_time")
    if end_time <= start_time:
        raise _bad("'end_time' must be after 'start_time'")
    return dataset_id, [str(a) for a in attribute_ids], start_time, end_time


def _seconds(value: float | None) -> str:
    return "" if value is None else str(int(value))


def _cell(outcome: FinOutcome, attribute_id: str) -> str:
    values = {
        "conversation_id": outcome.intercom_id,
        "conversation_started_at": _seconds(outcome.started_at),
        "external_reference_id": outcome.conversation_id,
        "conversation_state": outcome.status or "",
        "fin_ai_agent_participated": "true" if outcome.fin_participated else "false",
        "fin_ai_agent_resolution_state": outcome.resolution_state,
        "fin_ai_agent_resolved_at": _seconds(outcome.resolution_at)
        if outcome.resolution_state in ("assumed_resolution", "confirmed_resolution")
        else "",
        "fin_ai_agent_routed_to_team_at": _seconds(outcome.routed_at),
    }
    return values.get(attribute_id, "")


def export_file(store: ReportingStore, job: ExportJob) -> bytes:
    """The job's gzipped CSV."""
    dataset = DATASETS[job.dataset_id]
    columns = [_attribute_id(dataset, a) or a for a in job.attribute_ids]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    if job.dataset_id == "conversation":
        for outcome in store.outcomes(job.start_time, job.end_time):
            writer.writerow([_cell(outcome, c) for c in columns])
    return gzip.compress(text.getvalue().encode())


def reporting_store_of(app: FastAPI) -> ReportingStore:
    store: ReportingStore = app.state.reporting_store
    return store


def include_reporting(app: FastAPI, store: ReportingStore) -> None:
    app.state.reporting_store = store
    router = APIRouter()

    def required(request: Request, *names: str) -> None:
        for name in names:
            if not request.query_params.get(name):
                raise _bad(f"'{name}' is a required parameter")

    def found(request: Request, job_identifier: str) -> ExportJob:
        job = store.job(job_identifier)
        if job is None or request.query_params.get("job_identifier") != job_identifier:
            raise ApiError(404, "not_found", "Export job not found for identifier")
        return job

    def job_json(request: Request, job: ExportJob) -> dict[str, Any]:
        status = store.status(job)
        url = expires = ""
        if status == "complete":
            base = str(request.base_url).rstrip("/")
            app_id = request.query_params.get("app_id") or "app"
            url = (
                f"{base}/download/reporting_data/{job.job_identifier}"
                f"?app_id={app_id}&job_identifier={job.job_identifier}"
            )
            expires = str(int(max(job.ready_at, job.created_at)) + DOWNLOAD_HOURS * 3600)
        return {
            "job_identifier": job.job_identifier,
            "status": status,
            "download_url": url,
            "download_expires_at": expires,
        }

    @router.get("/export/reporting_data/get_datasets")
    def get_datasets() -> Any:
        return datasets_json()

    @router.post("/export/reporting_data/enqueue")
    def enqueue(request: Request, body: dict[str, Any] = Depends(json_object)) -> Any:
        dataset_id, attribute_ids, start_time, end_time = _validated(body)
        job = store.enqueue(dataset_id, attribute_ids, start_time, end_time, PENDING_LIMIT)
        if job is None:
            raise ApiError(
                429,
                "rate_limit_exceeded",
                f"Exceeded rate limit of {PENDING_LIMIT} pending reporting dataset export jobs",
            )
        return job_json(request, job)

    @router.get("/export/reporting_data/{job_identifier}")
    def job_status(request: Request, job_identifier: str) -> Any:
        required(request, "app_id", "client_id", "job_identifier")
        return job_json(request, found(request, job_identifier))

    @router.get("/download/reporting_data/{job_identifier}")
    def download(request: Request, job_identifier: str) -> Response:
        required(request, "app_id", "job_identifier")
        job = found(request, job_identifier)
        if "application/octet-stream" not in request.headers.get("accept", ""):
            raise ApiError(
                406, "not_acceptable", "This endpoint needs Accept: application/octet-stream"
            )
        if store.status(job) != "complete":
            raise _bad("Export job is not complete")
        return Response(
            export_file(store, job),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{job.job_identifier}.csv.gz"'},
        )

    app.include_router(router)
