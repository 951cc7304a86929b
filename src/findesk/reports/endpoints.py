"""``GET /api/v1/reports/...``: the report as JSON (or CSV with ``?format=csv``), for
administrators. Thin: authenticate, check the role, parse the question, call the engine, shape.

Exact paths only: ``/api/v1/reports/reconciliation`` belongs to the reconciliation report.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from findesk.agent_api.security import agent_api_router, current_agent
from findesk.kit.errors import Forbidden
from findesk.kit.http import PROBLEM_JSON, db_of, settings_of
from findesk.reports import export
from findesk.reports.filters import ReportSource, parse_query, report_source, today_in
from findesk.reports.schemas import AgentRow, Count, Csat, Measures, Period, Report, ReportQuery

router = agent_api_router(tag="Reports", not_found="Not found.")

Format = Literal["json", "csv"]
CSV_TYPE = "text/csv; charset=utf-8"
NDJSON_TYPE = "application/x-ndjson"
_problem = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV_TYPE: {}}, "description": "The view (CSV with `format=csv`)."},
    400: {"description": "Bad dates or filters (end before start, over two years).", **_problem},
    403: {"description": "The calling agent is not an administrator.", **_problem},
}


class ReportPart(BaseModel):
    query: ReportQuery
    timezone: str
    computed_at: datetime


class TotalsOut(ReportPart):
    data: Measures


class SeriesOut(ReportPart):
    data: list[Period]


class CountsOut(ReportPart):
    data: list[Count]


class AgentsOut(ReportPart):
    data: list[AgentRow]


class CsatOut(ReportPart):
    data: list[Csat]


Source = Annotated[ReportSource, Depends(report_source)]


def _question(request: Request) -> ReportQuery:
    """The admin's question from the query string (400 on bad input, after the 403)."""
    if current_agent(request).role != "admin":
        raise Forbidden("Only administrators may see reports.")
    settings = settings_of(request)
    today = today_in(settings.reports_timezone)
    return parse_query(request.query_params, today, blank_is_missing=False)


def _report(request: Request, source: ReportSource) -> Report:
    query = _question(request)
    db, settings = db_of(request), settings_of(request)
    source.refresh(db, settings)
    with db.read_session() as session:
        return source.build(session, settings, query)


def _csv(report: Report, view: str) -> Response:
    return Response(
        export.summary_csv(report, view),
        media_type=CSV_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename(view, report.query)}"'
        },
    )


def _part(report: Report) -> dict[str, Any]:
    return {"query": report.query, "timezone": report.timezone, "computed_at": report.computed_at}


# The query string every view takes; declared so that the API document lists it.
# Dates stay strings here (documented as dates): a bad one is the report's own 400, as on
# the page, not FastAPI's 422.
Start = Annotated[
    str | None,
    Query(
        description="First day, YYYY-MM-DD (default: 29 days before `end`).",
        json_schema_extra={"format": "date"},
    ),
]
End = Annotated[
    str | None,
    Query(
        description="Last day, included, YYYY-MM-DD (default: today, or 29 days after "
        "`start`). At most two years after `start`.",
        json_schema_extra={"format": "date"},
    ),
]
BucketQ = Annotated[
    str | None,
    Query(description="`day` (default) or `week`.", json_schema_extra={"enum": ["day", "week"]}),
]
Filter = Annotated[str | None, Query(max_length=255)]


def _format(
    start: Start = None,
    end: End = None,
    bucket: BucketQ = None,
    tag: Filter = None,
    team: Filter = None,
    agent: Filter = None,
    channel: Filter = None,
    reason: Filter = None,
    format: Format = "json",
) -> Format:
    """Every view's query string, declared once for the API document (``_question`` reads and
    checks it); the answer's format."""
    return format


Asked = Annotated[Format, Depends(_format)]


@router.get("/reports/overview", response_model=Report, responses=RESPONSES)
def overview(request: Request, source: Source, format: Asked) -> Any:
    """The whole report: totals, the series, every breakdown, agents and CSAT (the totals
    as CSV with `format=csv`). Every measure is defined in the README."""
    report = _report(request, source)
    return _csv(report, "totals") if format == "csv" else report


def _view(path: str, view: str, model: type[ReportPart], summary: str) -> None:
    def endpoint(request: Request, source: Source, format: Asked) -> Any:
        report = _report(request, source)
        if format == "csv":
            return _csv(report, view)
        return model(**_part(report), data=getattr(report, view))

    endpoint.__name__ = f"report_{view}"
    endpoint.__doc__ = summary
    router.add_api_route(path, endpoint, methods=["GET"], response_model=model, responses=RESPONSES)


_view("/reports/totals", "totals", TotalsOut, "The measures over the whole range.")
_view("/reports/series", "series", SeriesOut, "The measures per day or week.")
_view(
    "/reports/handover-reasons",
    "handover_reasons",
    CountsOut,
    "Fin's handover reasons, most frequent first.",
)
_view("/reports/channels", "channels", CountsOut, "Conversations per channel.")
_view(
    "/reports/response-times",
    "response_times",
    CountsOut,
    "The distribution of the time from handover to the first human reply.",
)
_view("/reports/agents", "agents", AgentsOut, "Per agent: volume, response times, CSAT.")
_view("/reports/csat", "csat", CsatOut, "CSAT ratings, Fin only and human-handled.")


@router.get(
    "/reports/conversations",
    responses={
        **RESPONSES,
        200: {
            "content": {NDJSON_TYPE: {}, CSV_TYPE: {}},
            "description": "One JSON object a line (or CSV rows with `format=csv`), streamed.",
        },
    },
)
def report_conversations(request: Request, source: Source, format: Asked) -> Response:
    """Every conversation the question picks, oldest first, with the timestamps and counts
    behind the measures: NDJSON (one object a line) or CSV, streamed."""
    query = _question(request)
    db, settings = db_of(request), settings_of(request)
    source.refresh(db, settings)

    def rows() -> Iterator[str]:
        with db.read_session() as session:
            found = source.rows(session, settings, query)
            if format == "csv":
                yield from export.conversation_csv(found)
                return
            for row in found:
                yield json.dumps(row, default=export.json_default) + "\n"

    if format == "csv":
        name = export.filename("conversations", query)
        return StreamingResponse(
            rows(),
            media_type=CSV_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return StreamingResponse(rows(), media_type=NDJSON_TYPE)
