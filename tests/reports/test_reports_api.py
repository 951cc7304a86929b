"""``GET /api/v1/reports/...`` on both backends: a bearer token is needed, an administrator's;
the JSON has the schema's shape; ``format=csv`` and the streamed conversations work; a bad
question is a 400 problem."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest
from support.reports import HandBuilt, serve_hand_built, stop_hand_built
from support.server import LiveServer

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.reports import export, service
from findesk.reports.schemas import Report

VIEWS = {
    "series": 3,
    "handover-reasons": 3,
    "channels": 2,
    "response-times": 7,
    "agents": 2,
    "csat": 2,
}


@pytest.fixture(scope="module")
def admin_api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.db.transaction() as session:
        agent = create_agent(session, email="boss@example.com", name="Boss", role="admin")
        token = create_agent_token(session, agent)
    with httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as http:
        yield http


@pytest.fixture
def hand_built(server: LiveServer) -> Iterator[HandBuilt]:
    hand = serve_hand_built(server)
    yield hand
    stop_hand_built(server)


PATHS = ["/reports/overview", *(f"/reports/{v}" for v in VIEWS), "/reports/conversations"]


@pytest.mark.parametrize("path", PATHS)
def test_no_token_is_a_401_and_an_agents_token_a_403(
    server: LiveServer, agent_client: httpx.Client, path: str
) -> None:
    anonymous = httpx.get(f"{server.base_url}/api/v1{path}")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    refused = agent_client.get(path)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    # Even with a bad question: who may ask comes first.
    assert agent_client.get(path, params={"start": "nope"}).status_code == 403


def test_the_overview_is_the_whole_report(admin_api: httpx.Client) -> None:
    response = admin_api.get("/reports/overview", params={"start": "2026-11-01"})
    assert response.status_code == 200
    report = Report.model_validate(response.json())  # the schema's shape, whatever the numbers
    assert report.query.start.isoformat() == "2026-11-01"
    assert report.query.end.isoformat() == "2026-11-30"
    assert report.query.bucket == "day"
    assert set(response.json()) == set(Report.model_fields)


def test_each_view_answers_json_and_csv(admin_api: httpx.Client, hand_built: HandBuilt) -> None:
    params = {"start": "2026-11-02", "end": "2026-11-04", "channel": "email"}
    overview = admin_api.get("/reports/overview", params=params).json()
    assert overview["totals"]["conversations"] == 35
    assert overview["handover_reasons"][0] == {
        "key": "asked_for_human",
        "label": "Asked for a human",
        "count": 9,
    }
    assert hand_built.asked[-1].channel == "email"
    for view, count in VIEWS.items():
        body = admin_api.get(f"/reports/{view}", params=params).json()
        assert body["query"]["start"] == "2026-11-02" and body["timezone"] == "UTC"
        assert body["computed_at"].startswith("2026-11-04T14:37")
        assert len(body["data"]) == count, view
        as_csv = admin_api.get(f"/reports/{view}", params={**params, "format": "csv"})
        assert as_csv.status_code == 200
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in as_csv.headers["content-disposition"]
        assert len(list(csv.reader(io.StringIO(as_csv.text)))) == count + 1, view
    agents = admin_api.get("/reports/agents", params=params).json()["data"]
    assert (
        agents[0]["name"] == "Ada Agent" and agents[1]["avg_seconds_to_first_human_reply"] is None
    )
    totals = admin_api.get("/reports/overview", params={**params, "format": "csv"}).text
    header, row = list(csv.reader(io.StringIO(totals)))
    assert dict(zip(header, row, strict=True))["conversations"] == "35"


def test_conversations_stream_as_ndjson_or_csv(
    admin_api: httpx.Client, hand_built: HandBuilt
) -> None:
    response = admin_api.get("/reports/conversations", params={"end": "2026-11-04"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["id"] for line in lines] == ["conv_1", "conv_2"]
    assert lines[0]["created_at"] == "2026-11-02T09:00:00.000Z"
    assert hand_built.asked[-1].start.isoformat() == "2026-10-06"
    as_csv = admin_api.get("/reports/conversations", params={"format": "csv"})
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert table[0] == ["id", "created_at", "channel", "handover_reason", "tag"]
    assert table[1][4] == "'@SUM(A1)"


def test_with_no_conversations_the_csv_still_has_its_header(admin_api: httpx.Client) -> None:
    as_csv = admin_api.get("/reports/conversations", params={"format": "csv", "end": "2001-01-31"})
    assert as_csv.status_code == 200
    assert list(csv.reader(io.StringIO(as_csv.text))) == [export.conversation_columns()]


def test_the_engines_numbers_come_through(server: LiveServer, admin_api: httpx.Client) -> None:
    """Fin resolves one conversation and hands one over (billing): once the facts are
    refreshed (each minute, or at once here), the API reports both."""
    world = server.fin_world()
    solved, _ = world.conversation()
    world.fin_says(str(solved["id"]))
    world.update(str(solved["id"]), status="resolved")
    handed, _ = world.conversation()
    world.update(str(handed["id"]), attributes={"fin_handover_reason": "billing"})
    world.hand_over(str(handed["id"]))
    service.refresh(server.db, server.settings)
    overview = admin_api.get("/reports/overview").json()
    assert overview["totals"]["conversations"] >= 2
    assert overview["totals"]["fin_resolved"] >= 1
    assert {"key": "billing", "label": "billing", "count": 1} in overview["handover_reasons"]
    rows = admin_api.get("/reports/conversations", params={"format": "csv"}).text
    listed = {row["conversation_id"]: row for row in csv.DictReader(io.StringIO(rows))}
    assert listed[str(handed["id"])]["reason"] == "billing"
    assert listed[str(solved["id"])]["fin_resolved_at"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "end"),
        ({"start": "03/02/2026"}, "start"),
        ({"bucket": "hour"}, "bucket"),
        ({"start": ""}, "start"),  # the page's form sends empty fields; a script means a date
    ],
)
def test_a_bad_question_is_a_400_problem(
    admin_api: httpx.Client, params: dict[str, str], field: str
) -> None:
    for path in ("/reports/overview", "/reports/series", "/reports/conversations"):
        response = admin_api.get(path, params=params)
        assert response.status_code == 400, path
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "invalid_report_query"
        assert problem["status"] == 400 and problem["detail"]
        assert [e["field"] for e in problem["errors"]] == [field]


def test_only_exact_paths_are_taken(admin_api: httpx.Client) -> None:
    """No catch-all: an unknown view is a 404, and the reconciliation is its own endpoint."""
    assert admin_api.get("/reports/everything").status_code == 404
    reconciliation = admin_api.get(
        "/reports/reconciliation", params={"start": "2026-01-01", "end": "2026-01-31"}
    )
    assert reconciliation.status_code == 200 and "days" in reconciliation.json()
