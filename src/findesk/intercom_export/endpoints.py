"""``GET /api/v1/reports/reconciliation``: Intercom's Fin resolutions against findesk's evidence
(``reconcile``), for administrators, as JSON or (``format=csv``) the disagreements as CSV."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from findesk.agent_api.endpoints import ADMIN_ONLY, current_admin
from findesk.agent_api.security import agent_api_router
from findesk.intercom_export.reconcile import Reconciliation, reconcile, to_csv
from findesk.intercom_export.schemas import ReconciliationOut
from findesk.kit.http import db_of, settings_of

PATH = "/reports/reconciliation"

router = agent_api_router(tag="Reports", not_found="Not found.")


def run_reconciliation(request: Request, start: date, end: date) -> Reconciliation:
    with db_of(request).read_session() as session:
        return reconcile(session, settings_of(request), start, end)


def csv_response(result: Reconciliation) -> Response:
    name = f"reconciliation-{result.start.isoformat()}-{result.end.isoformat()}.csv"
    return Response(
        to_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    PATH,
    response_model=ReconciliationOut,
    responses={
        **ADMIN_ONLY,
        200: {
            "description": "The reconciliation (JSON), or its disagreements (format=csv).",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def reconciliation(
    request: Request,
    start: date = Query(description="First day (the reports' time zone)."),
    end: date = Query(description="Last day, included."),
    format: Literal["json", "csv"] = Query(default="json"),
) -> ReconciliationOut | Response:
    """Per day, the Fin resolutions Intercom counts in its Reporting Data Export (pulled by
    `findesk intercom export`): confirmed by findesk's history, or disputed, itemised with the
    evidence (handed over, a human replied, the end user came back, no such conversation).
    Every day of the range is listed, or only those with exported rows when it is longer than
    400 days; a range that ends before it starts has none."""
    current_admin(request)
    result = await run_in_threadpool(run_reconciliation, request, start, end)
    if format == "csv":
        return csv_response(result)
    return ReconciliationOut.model_validate(result.to_dict())
