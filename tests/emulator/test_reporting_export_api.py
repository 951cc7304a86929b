"""The emulated Reporting Data Export API (spec 5): datasets, enqueue's validation, job status,
the limit of 5 pending jobs, and the gzipped CSV built from Fin's own runs against findesk."""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from content_api_server import TOKEN, ServedApp
from loop_support import Loop, start_loop
from support.server import database_url

from findesk.emulator.content_api import create_content_api
from findesk.emulator.reporting_api import include_reporting
from findesk.emulator.reporting_store import ReportingStore

ATTRIBUTES = [
    "conversation_id",
    "conversation_started_at",
    "external_reference_id",
    "fin_ai_agent_participated",
    "fin_ai_agent_resolution_state",
]
QUERY = {"app_id": "app1", "client_id": "client1"}


@pytest.fixture
def reporting(tmp_path: Path) -> Iterator[tuple[ServedApp, ReportingStore]]:
    app = create_content_api(f"sqlite:///{tmp_path / 'c.db'}", [TOKEN], 100_000, 10)
    store = ReportingStore(app.state.content_store.engine, job_seconds=0)
    include_reporting(app, store)
    served = ServedApp(app)
    yield served, store
    served.stop()


def enqueue_body(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "dataset_id": "conversation",
        "attribute_ids": ATTRIBUTES,
        "start_time": now - 86400,
        "end_time": now + 60,
        **overrides,
    }


def errors_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["type"] == "error.list"
    return response.status_code, body["errors"][0]["code"], body["errors"][0]["message"]


def test_datasets_list_the_conversation_dataset_with_fin_attributes(reporting) -> None:
    served, _store = reporting
    with served.client() as api:
        assert api.get("/export/reporting_data/get_datasets").status_code == 200
        body = api.get("/export/reporting_data/get_datasets").json()
    with served.client(token="wrong") as stranger:
        assert stranger.get("/export/reporting_data/get_datasets").status_code == 401
    assert body["type"] == "list"
    conversation = next(d for d in body["data"] if d["id"] == "conversation")
    assert set(conversation) >= {"id", "name", "description", "default_time_attribute_id"}
    assert conversation["default_time_attribute_id"] == "conversation_started_at"
    ids = {a["id"] for a in conversation["attributes"]}
    assert set(ATTRIBUTES) <= ids
    assert all(set(a) >= {"id", "name", "qualified_id"} for a in conversation["attributes"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dataset_id": None}, "'dataset_id' is a required parameter"),
        ({"dataset_id": "tickets_galore"}, "tickets_galore is not a valid dataset_id"),
        ({"attribute_ids": None}, "'attribute_ids' is a required parameter"),
        ({"attribute_ids": []}, "attribute_ids must contain at least one attribute_id"),
        (
            {"attribute_ids": ["conversation_id", "shoe_size", "hat"]},
            "attribute_ids invalid for conversation dataset: shoe_size, hat",
        ),
        ({"start_time": None}, "'start_time' is a required parameter"),
        ({"end_time": "tomorrow"}, "'end_time' must be a Unix timestamp in seconds"),
        ({"start_time": 2000, "end_time": 1000}, "'end_time' must be after 'start_time'"),
    ],
)
def test_enqueue_refuses_what_intercom_refuses(reporting, body, message) -> None:
    served, store = reporting
    with served.client() as api:
        response = api.post("/export/reporting_data/enqueue", json=enqueue_body(**body))
    assert errors_of(response) == (400, "bad_request", message)
    assert store.enqueued() == 0


def test_a_job_goes_pending_then_complete_and_unknown_ones_are_404(reporting) -> None:
    served, store = reporting
    store.hold = True
    with served.client() as api:
        job = api.post("/export/reporting_data/enqueue", json=enqueue_body()).json()
        assert set(job) == {"job_identifier", "status", "download_url", "download_expires_at"}
        assert job["status"] == "pending" and job["download_url"] == ""
        path = f"/export/reporting_data/{job['job_identifier']}"
        query = {**QUERY, "job_identifier": job["job_identifier"]}
        assert api.get(path, params=query).json()["status"] == "pending"
        # The job is not ready: no file yet.
        download = f"/download/reporting_data/{job['job_identifier']}"
        early = api.get(
            download,
            params={"app_id": "a", "job_identifier": job["job_identifier"]},
            headers={"Accept": "application/octet-stream"},
        )
        assert errors_of(early)[:2] == (400, "bad_request")
        store.hold = False
        done = api.get(path, params=query).json()
        assert done["status"] == "complete"
        assert done["download_url"].endswith(
            f"/download/reporting_data/{job['job_identifier']}?app_id=app1"
            f"&job_identifier={job['job_identifier']}"
        )
        assert int(done["download_expires_at"]) > time.time()
        missing = api.get(
            "/export/reporting_data/nosuchjob", params={**QUERY, "job_identifier": "nosuchjob"}
        )
        assert errors_of(missing) == (404, "not_found", "Export job not found for identifier")
        without_client = api.get(path, params={"app_id": "a", "job_identifier": "x"})
        assert errors_of(without_client) == (
            400,
            "bad_request",
            "'client_id' is a required parameter",
        )
        store.fail_next = True
        failing = api.post("/export/reporting_data/enqueue", json=enqueue_body()).json()
        query = {**QUERY, "job_identifier": failing["job_identifier"]}
        path = f"/export/reporting_data/{failing['job_identifier']}"
        assert api.get(path, params=query).json()["status"] == "failed"


def test_the_sixth_pending_job_is_refused_with_429(reporting) -> None:
    served, store = reporting
    store.hold = True
    with served.client() as api:
        for _ in range(5):
            assert (
                api.post("/export/reporting_data/enqueue", json=enqueue_body()).status_code == 200
            )
        sixth = api.post("/export/reporting_data/enqueue", json=enqueue_body())
        assert errors_of(sixth) == (
            429,
            "rate_limit_exceeded",
            "Exceeded rate limit of 5 pending reporting dataset export jobs",
        )
        store.hold = False  # the five complete: room again
        assert api.post("/export/reporting_data/enqueue", json=enqueue_body()).status_code == 200
    assert store.enqueued() == 6


# --- the file, from Fin's runs against a real findesk ----------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def loop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Loop]:
    url = database_url(request.param, request, tmp_path)
    wired = start_loop(tmp_path, url, reporting_job_seconds=0.0)
    yield wired
    wired.stop()


def rows_of(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(content).decode())))


def test_the_download_is_a_gzipped_csv_of_fins_runs(loop: Loop) -> None:
    engine = loop.emulator.app.state.engine
    answered = engine.start_conversation(
        {"object_id": "visitor-a", "name": "Ana", "email": "ana@example.com"},
        "<p>How long do refunds take to reach my card?</p>",
    )
    handed = engine.start_conversation(
        {"object_id": "visitor-b", "name": "Bo", "email": "bo@example.com"},
        "<p>How long do refunds take?</p>",
    )
    assert answered.error is None and handed.error is None
    assert engine.user_says(handed.conversation_id, "<p>I want to talk to a human</p>").decision
    with loop.admin() as api:
        job = api.post("/export/reporting_data/enqueue", json=enqueue_body()).json()
        identifier = job["job_identifier"]
        params = {"app_id": "a", "job_identifier": identifier}
        refused = api.get(f"/download/reporting_data/{identifier}", params=params)
        assert errors_of(refused)[:2] == (406, "not_acceptable")
        response = api.get(
            f"/download/reporting_data/{identifier}",
            params=params,
            headers={"Accept": "application/octet-stream"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content[:2] == b"\x1f\x8b"  # gzip
    rows = {r["external_reference_id"]: r for r in rows_of(response.content)}
    assert set(rows) == {answered.conversation_id, handed.conversation_id}
    assert list(next(iter(rows.values()))) == ATTRIBUTES  # the columns asked for, in order
    assert rows[answered.conversation_id]["fin_ai_agent_resolution_state"] == "assumed_resolution"
    assert rows[handed.conversation_id]["fin_ai_agent_resolution_state"] == "routed_to_team"
    assert all(r["fin_ai_agent_participated"] == "true" for r in rows.values())
    assert len({r["conversation_id"] for r in rows.values()}) == 2
    assert all(r["conversation_id"].isdigit() for r in rows.values())
    started = int(rows[answered.conversation_id]["conversation_started_at"])
    assert abs(started - time.time()) < 120
