"""The ASGI application: the Fin API, OAuth, the agent API, health and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.staticfiles import StaticFiles

from findesk import __version__
from findesk.agent_api.articles import router as agent_articles_router
from findesk.agent_api.endpoints import router as agent_router
from findesk.agent_api.schemas import IntercomError
from findesk.agent_api.visitors import router as agent_visitors_router
from findesk.alerts.endpoints import router as alerts_router
from findesk.alerts.pages import router as alerts_pages_router
from findesk.apidocs.endpoints import router as apidocs_router
from findesk.attachments.endpoints import router as files_router
from findesk.auth.endpoints import router as oauth_router
from findesk.auth.passwords import PasswordChecker
from findesk.chat import endpoints as chat
from findesk.conversations.waker import Waker
from findesk.csat.endpoints import router as csat_router
from findesk.fin_api import endpoints as fin
from findesk.fin_api.schemas import ErrorEnvelope
from findesk.fin_ledger.calls import FinLedger
from findesk.fin_ledger.recorder import LedgerRecorder
from findesk.inbox.articles import router as articles_router
from findesk.inbox.endpoints import HERE as INBOX_HERE
from findesk.inbox.endpoints import router as inbox_router
from findesk.inbox.lookups import router as inbox_lookups_router
from findesk.inbox.objects import router as inbox_objects_router
from findesk.inbox.reconciliation import router as inbox_reconciliation_router
from findesk.inbox.replies import router as inbox_replies_router
from findesk.inbox.reports import router as inbox_reports_router
from findesk.inbox.sla import router as inbox_sla_router
from findesk.inbox.teams import router as inbox_teams_router
from findesk.inbox.tickets import router as inbox_tickets_router
from findesk.intercom_export.endpoints import router as reconciliation_api_router
from findesk.intercom_export.service import DailyExportLoop
from findesk.kit.db import Database
from findesk.kit.errors import Problem
from findesk.kit.http import BodySizeLimit, problem_response, validation_problem
from findesk.kit.schemas import ProblemOut
from findesk.kit.settings import Settings, get_settings
from findesk.kit.settings_in_use import SettingsInUse
from findesk.kit.streams import StreamSlots
from findesk.knowledge.endpoints import router as help_router
from findesk.knowledge.publisher import PublisherLoop
from findesk.live.broker import LiveFeed
from findesk.lookups.endpoints import router as lookups_router
from findesk.notifier.typing import TypingSender
from findesk.notifier.worker import Worker
from findesk.objects.endpoints import instances as objects_api_router
from findesk.objects.endpoints import types as object_types_router
from findesk.objects.mirror import MirrorLoop
from findesk.ops.endpoints import router as ops_router
from findesk.replies.endpoints import router as replies_api_router
from findesk.reports.endpoints import router as reports_api_router
from findesk.reports.refresher import Refresher
from findesk.routing.endpoints import router as routing_api_router
from findesk.sla.checker import Checker as SlaChecker
from findesk.sla.endpoints import router as sla_api_router
from findesk.teams.endpoints import router as teams_api_router
from findesk.tickets.endpoints import router as tickets_api_router

INBOX_STATIC = INBOX_HERE / "static"
log = logging.getLogger(__name__)
FIN_API = "/api/fin"

DESCRIPTION = """
findesk is a helpdesk for teams that run Intercom's Fin AI agent.

* **Fin API** (`/api/fin`): the Fin Custom Helpdesk contract, in the REST variant and the
  posts-only variant (`{data, error}` envelope). Bearer tokens from `POST /oauth/token`.
* **Agent API** (`/api/v1`): what human agents do, with a personal token.
"""


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path, for a 405's ``Allow`` header."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Size the request thread pool; start the typing sender, the Fin call ledger's recorder
    and, unless workers run apart, the delivery worker, the snooze waker and (with an Intercom
    access token) the knowledge base's publisher."""
    settings: Settings = app.state.settings
    # Sync endpoints run in anyio's default pool (this event loop's): its size is ours to set.
    to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
    await app.state.typing.start()
    await app.state.live.start()
    recorder = LedgerRecorder(
        app.state.db,
        app.state.fin_ledger,
        timedelta(days=settings.fin_ledger_retention_days),
    )
    recorder_task = asyncio.create_task(recorder.run(), name="findesk-fin-ledger")
    worker = None
    waker = None
    waker_task: asyncio.Task[None] | None = None
    if settings.notifier_in_process:
        worker = Worker(app.state.db, settings)
        app.state.worker_task = asyncio.create_task(worker.run(), name="findesk-notifier")
        waker = Waker(app.state.db, settings.snooze_check_seconds)
        waker_task = asyncio.create_task(waker.run(), name="findesk-snooze-waker")
    # The reports' facts, current to the minute (one process at a time refreshes them).
    refresher = Refresher(app.state.db, settings)
    refresher_task = asyncio.create_task(refresher.run(), name="findesk-reports")
    # SLA breaches and their escalations (one process at a time checks).
    sla_checker = SlaChecker(app.state.db, settings.sla_check_seconds)
    sla_checker_task = asyncio.create_task(sla_checker.run(), name="findesk-sla-checker")
    publisher: PublisherLoop | None = None
    publisher_task: asyncio.Task[None] | None = None
    mirror: MirrorLoop | None = None
    mirror_task: asyncio.Task[None] | None = None
    if settings.intercom_access_token is not None and settings.kb_publish_in_process:
        publisher = PublisherLoop(app.state.db, settings)
        publisher_task = asyncio.create_task(publisher.run(), name="findesk-kb-publisher")
        # Custom objects of mirrored types, kept in step with Intercom beside the articles.
        mirror = MirrorLoop(app.state.db, settings)
        mirror_task = asyncio.create_task(mirror.run(), name="findesk-objects-mirror")
    daily_export: DailyExportLoop | None = None
    daily_export_task: asyncio.Task[None] | None = None
    if settings.intercom_access_token is not None and settings.intercom_export_daily:
        if settings.intercom_app_id and settings.intercom_client_id:
            daily_export = DailyExportLoop(app.state.db, settings)
            app.state.daily_export = daily_export
            daily_export_task = asyncio.create_task(
                daily_export.run(), name="findesk-intercom-daily-export"
            )
        else:
            log.warning(
                "FINDESK_INTERCOM_EXPORT_DAILY needs FINDESK_INTERCOM_APP_ID and "
                "FINDESK_INTERCOM_CLIENT_ID: no daily export"
            )
    try:
        yield
    finally:
        if daily_export is not None and daily_export_task is not None:
            daily_export.stop()
            await daily_export_task
        if publisher is not None and publisher_task is not None:
            publisher.stop()
            await publisher_task
        if mirror is not None and mirror_task is not None:
            mirror.stop()
            await mirror_task
        if worker is not None:
            worker.stop()
            await app.state.worker_task
        if waker is not None and waker_task is not None:
            waker.stop()
            await waker_task
        sla_checker.stop()
        await sla_checker_task
        refresher.stop()
        await refresher_task
        recorder.stop()  # after the last request: it writes what is still buffered
        await recorder_task
        await app.state.live.stop()
        await app.state.typing.stop()


def create_app_from_environment() -> FastAPI:
    """The app as each process of ``findesk serve --workers N`` builds it (uvicorn's factory):
    settings from the environment, a database of its own, findesk's JSON logs. The parent
    process has already migrated the schema."""
    from findesk.kit import logs

    logs.configure()
    return create_app()


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.effective_database_url)
    app = FastAPI(
        title="findesk",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # FastAPI's pages load scripts from a CDN: see findesk.apidocs
        redoc_url=None,
        # findesk exports its own Prometheus metrics (/metrics) and JSON logs; FastAPI's
        # OpenTelemetry, unconfigured, would still look for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.db = db
    app.state.typing = TypingSender(settings, db)
    app.state.live = LiveFeed(db, settings.live_poll_seconds)
    app.state.live_streams = StreamSlots(
        settings.live_streams_per_session, settings.live_streams_max
    )
    app.state.fin_ledger = FinLedger(settings.fin_ledger_enabled)
    app.state.passwords = PasswordChecker(
        settings.password_check_workers, settings.password_check_queue
    )
    app.state.worker_task = None

    app.include_router(oauth_router)
    app.include_router(fin.rest, prefix=FIN_API)
    app.include_router(fin.posts, prefix=FIN_API)
    app.include_router(agent_router)
    app.include_router(agent_articles_router)
    app.include_router(agent_visitors_router)
    app.include_router(alerts_router)
    app.include_router(replies_api_router)
    app.include_router(teams_api_router)
    app.include_router(routing_api_router)
    app.include_router(sla_api_router)
    app.include_router(objects_api_router)
    app.include_router(object_types_router)
    app.include_router(tickets_api_router)
    app.include_router(reports_api_router)
    app.include_router(lookups_router)
    app.include_router(reconciliation_api_router)
    app.include_router(help_router)
    app.include_router(csat_router)
    app.include_router(ops_router)
    app.include_router(files_router)
    app.include_router(inbox_router)
    app.include_router(articles_router)
    app.include_router(inbox_replies_router)
    app.include_router(inbox_teams_router)
    app.include_router(inbox_sla_router)
    app.include_router(inbox_objects_router)
    app.include_router(inbox_lookups_router)
    app.include_router(alerts_pages_router)
    app.include_router(inbox_tickets_router)
    app.include_router(inbox_reports_router)
    app.include_router(inbox_reconciliation_router)
    app.include_router(apidocs_router)
    app.include_router(chat.public)
    app.include_router(chat.visitor_api)
    app.include_router(chat.hooks)
    app.include_router(chat.pages)
    app.mount("/static", StaticFiles(directory=INBOX_STATIC), name="static")

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> Response:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        return problem_response(validation_problem(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        problem = Problem(str(exc.detail), status=exc.status_code, code="http_error")
        response: JSONResponse = problem_response(problem)
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            # Starlette names only the first route on the path; RFC 9110 wants every method.
            response.headers["Allow"] = allowed
        return response

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            fin.document_bearer_auth(schema, FIN_API)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (ProblemOut, ErrorEnvelope, IntercomError):
                component = model.model_json_schema(ref_template="#/components/schemas/{model}")
                # The models it refers to, as components of their own (where the refs point).
                for name, nested in component.pop("$defs", {}).items():
                    components.setdefault(name, nested)
                components[model.__name__] = component
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Replies may carry files: a few attachments' worth, not the 1 MiB of a JSON call.
    upload_limit = settings.max_attachment_bytes * 5 + settings.max_body_bytes
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger={"/reply": upload_limit, "/chat/v1/attachments": upload_limit},
        enveloped=frozenset(
            f"{FIN_API}{route.path}" for route in fin.posts.routes if isinstance(route, APIRoute)
        ),
    )
    # The chat widget's API answers the company's sites only (CORS).
    app.add_middleware(chat.ChatCors, settings=settings)
    # The hooks (CSAT, alerts, SLAs) read this app's settings, whichever path changes things.
    app.add_middleware(SettingsInUse, settings=settings)
    return app
