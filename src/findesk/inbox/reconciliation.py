"""The administrators' reconciliation page: per day, the Fin resolutions Intercom counts against
findesk's own evidence, the disagreements listed with links to the conversations, and the
same as CSV (``?format=csv``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from findesk.inbox.endpoints import guarded, render
from findesk.inbox.security import Viewer
from findesk.intercom_export.endpoints import csv_response, run_reconciliation
from findesk.kit.errors import Forbidden
from findesk.kit.http import settings_of

router = APIRouter(include_in_schema=False)
PAGE = "/inbox/reports/reconciliation"
DEFAULT_DAYS = 7
MAX_DAYS = 400  # days the page shows at once


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@router.get(PAGE)
async def reconciliation_page(request: Request) -> Response:
    async def run(viewer: Viewer) -> Response:
        if viewer.agent.role != "admin":
            raise Forbidden("Only administrators may see the reconciliation.")
        settings = settings_of(request)
        today = datetime.now(ZoneInfo(settings.reports_timezone)).date()
        errors: list[str] = []
        end = _day(request.query_params.get("end")) or today
        start = _day(request.query_params.get("start")) or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end or end - start > timedelta(days=MAX_DAYS):
            errors.append(f"Pick a start before the end, at most {MAX_DAYS} days apart.")
            end = today
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        result = await run_in_threadpool(run_reconciliation, request, start, end)
        if request.query_params.get("format") == "csv":
            return csv_response(result)
        return render(
            request,
            "reports_reconciliation.html",
            viewer=viewer,
            result=result,
            errors=errors,
        )

    return await guarded(request, run, page=True)
