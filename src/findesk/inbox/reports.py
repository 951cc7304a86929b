"""The reports page (``/inbox/reports``, administrators): a GET filter form that works without
JavaScript, headline cards, SVG charts with the same numbers as tables under each, per-agent
and CSAT tables, and a CSV link beside every view (``/inbox/reports.csv?view=…``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from findesk.agents import repository as agent_repository
from findesk.inbox.endpoints import guarded, render, templates
from findesk.inbox.security import Viewer
from findesk.kit.errors import Forbidden, Problem
from findesk.kit.http import db_of, settings_of
from findesk.kit.timeutil import as_utc
from findesk.reports import charts, export
from findesk.reports.filters import (
    ReportSource,
    parse_query,
    query_params,
    report_source,
    today_in,
)
from findesk.reports.schemas import Report, ReportQuery
from findesk.teams import repository as team_repository

router = APIRouter(include_in_schema=False)

REPORTS = "/inbox/reports"
RECONCILIATION = "/inbox/reports/reconciliation"
FORM_FIELDS = ("start", "end", "bucket", "tag", "team", "agent", "channel", "reason")
CSV_TYPE = "text/csv; charset=utf-8"
Source = Annotated[ReportSource, Depends(report_source)]


def duration(seconds: float | None) -> str:
    """``42 s``, ``2 min 30 s``, ``17 min``, ``3 h 5 min``, ``2 d 4 h``; an average of
    nothing is "n/a" (never 0)."""
    if seconds is None:
        return "n/a"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 600:  # under ten minutes, the seconds still matter
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def average(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


templates.env.filters["report_duration"] = duration
templates.env.filters["report_percent"] = percent
templates.env.filters["report_average"] = average


def _require_admin(viewer: Viewer) -> None:
    if viewer.agent.role != "admin":
        raise Forbidden("Only administrators may see reports.")


def _as_of(report: Report) -> str:
    try:
        zone = ZoneInfo(report.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return as_utc(report.computed_at).astimezone(zone).strftime("%H:%M")


def _cards(report: Report) -> list[tuple[str, str, str]]:
    """(label, value, what it counts) of each headline card."""
    t = report.totals
    csat = {c.label: c for c in report.csat}
    cards = [
        ("Conversations", str(t.conversations), "started in the range"),
        (
            "Fin resolution rate",
            percent(t.fin_resolution_rate),
            f"{t.fin_resolved} resolved by Fin",
        ),
        ("Handover rate", percent(t.handover_rate), f"{t.handed_over} handed over"),
        ("Time to take-over", duration(t.avg_seconds_to_take_over), "average, after handover"),
        (
            "Time to first human reply",
            duration(t.avg_seconds_to_first_human_reply),
            "average, after handover",
        ),
        ("Resolution time", duration(t.avg_seconds_to_resolve), f"average of {t.resolved}"),
        (
            "Reopen rate",
            percent(t.fin_reopen_rate),
            f"of Fin resolutions, within {report.reopen_window_days} days",
        ),
        ("Durable Fin resolutions", str(t.durable_fin_resolutions), f"{t.fin_reopened} reopened"),
    ]
    for label in ("Fin only", "Human-handled"):
        c = csat.get(label)
        cards.append(
            (
                f"CSAT {label}",
                average(c.average if c else None),
                f"{c.ratings if c else 0} ratings (1-5)",
            )
        )
    return cards


def _context(request: Request, viewer: Viewer, source: ReportSource) -> tuple[dict[str, Any], int]:
    params = request.query_params
    settings = settings_of(request)
    given = {name: (params.get(name) or "")[:300] for name in FORM_FIELDS}
    errors: list[str] = []
    query: ReportQuery | None = None
    try:
        query = parse_query(params, today_in(settings.reports_timezone))
    except Problem as exc:
        errors = [e["msg"] for e in exc.errors or [{"msg": exc.detail}]]
    db = db_of(request)
    if query is not None:
        source.refresh(db, settings)
    with db.read_session() as session:
        agents = [
            (a.id, a.name) for a in agent_repository.list_all(session) if not a.is_bot and a.active
        ]
        teams = [(t.id, t.name) for t in team_repository.list_all(session)]
        report = source.build(session, settings, query) if query is not None else None
    context: dict[str, Any] = {
        "viewer": viewer,
        "filters": given,
        "errors": errors,
        "agents": agents,
        "teams": teams,
        "report": report,
        "reconciliation": RECONCILIATION,
    }
    if report is not None and query is not None:
        for name, value in query_params(query).items():
            given[name] = value
        given["bucket"] = query.bucket
        here = query_params(query)
        context.update(
            as_of=_as_of(report),
            cards=_cards(report),
            series_chart=charts.time_series(report.series, query.bucket),
            reasons_chart=charts.bar_chart(report.handover_reasons, "Handover reasons"),
            channels_chart=charts.bar_chart(report.channels, "Conversations per channel"),
            times_chart=charts.histogram(
                report.response_times, "Time from handover to the first human reply"
            ),
            csv={
                view: f"{REPORTS}.csv?" + urlencode({"view": view, **here}) for view in export.VIEWS
            },
            api=f"/api/v1/reports/overview?{urlencode(here)}",
        )
    return context, 400 if errors else 200


@router.get(REPORTS)
async def reports_page(request: Request, source: Source) -> Response:
    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        context, status = await run_in_threadpool(_context, request, viewer, source)
        return render(request, "reports.html", http_status=status, **context)

    return await guarded(request, run, page=True)


@router.get(f"{REPORTS}.csv")
async def reports_csv(request: Request, source: Source) -> Response:
    """One view as CSV (``?view=series`` …, the page's filters alongside)."""

    async def run(viewer: Viewer) -> Response:
        _require_admin(viewer)
        view = export.normal_view(request.query_params.get("view") or "totals")
        settings = settings_of(request)
        try:
            if view is None:
                raise Problem(f"Unknown view: choose one of {', '.join(export.VIEWS)}.")
            query = parse_query(request.query_params, today_in(settings.reports_timezone))
        except Problem as exc:
            return Response(exc.detail + "\n", status_code=400, media_type="text/plain")
        headers = {
            "Content-Disposition": f'attachment; filename="{export.filename(view, query)}"',
            "Cache-Control": "no-store",
        }
        db = db_of(request)
        await run_in_threadpool(source.refresh, db, settings)
        if view == "conversations":

            def rows() -> Any:
                with db.read_session() as session:
                    yield from export.conversation_csv(source.rows(session, settings, query))

            return StreamingResponse(rows(), media_type=CSV_TYPE, headers=headers)

        def summary() -> str:
            with db.read_session() as session:
                return export.summary_csv(source.build(session, settings, query), view)

        body = await run_in_threadpool(summary)
        return Response(body, media_type=CSV_TYPE, headers=headers)

    return await guarded(request, run, page=True)
