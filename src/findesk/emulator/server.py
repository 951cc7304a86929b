"""The Fin emulator as one server: Intercom's side of the Fin Custom Helpdesk loop.

* ``POST /hooks/standalone/custom_helpdesk_conversation_event/{integration_id}`` takes the
  helpdesk's webhook as Fin does: the integration id and ``X-Webhook-Key`` are checked; a sync
  event starts a (debounced, locked) sync run; an ``agent_typing`` event shows a typing
  indicator for a few seconds.
* ``GET /emulator/errors`` is the error log Fin keeps on its settings page;
  ``GET /emulator/typing/{conversation_id}`` tells whether an agent is typing.
* ``/messenger`` is the Messenger page end users talk to Fin on (see ``messenger``).
* ``/help/{locale}/articles/{id}-{slug}`` is the public help centre (published articles), where
  Fin's citations of articles point.
* ``/export/reporting_data/…`` and ``/download/reporting_data/…`` are the Reporting Data Export
  API, built from the emulator's record of Fin's runs (``reporting_api``);
  ``POST /emulator/reporting/plant`` makes it report another outcome for one conversation.
* ``/fin/start``, ``/fin/reply``, ``/fin/csat`` are the Fin Agent API (``fin_agent_api``) and
  ``/custom_channel_events/notify_*`` the Custom Channel Events (``custom_channel``): Intercom's
  side of findesk's own chat, Fin answering with the same answerer, its events delivered to the
  URLs of the configuration; ``GET /emulator/fin-agent/{id}`` and
  ``GET /emulator/custom-channel/{id}`` show what each received and sent.
* Everything else is the AI Content API (the content library the answerer answers from) and the
  Articles API (whose published translations the answerer answers from in the user's language).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from findesk.emulator.actions import ConnectorActions
from findesk.emulator.answerer import PageLike, RetrievalAnswerer
from findesk.emulator.articles_api import (
    DEFAULT_HELP_CENTER_URL,
    DEFAULT_TEAMMATE_IDS,
    articles_of,
    help_center_router,
)
from findesk.emulator.channel_store import Deliverer, FinBrain, IntercomGate
from findesk.emulator.content_api import RateLimiter, create_content_api, store_of
from findesk.emulator.custom_channel import (
    CustomChannel,
    callback_headers,
    custom_channel_router,
)
from findesk.emulator.data_connectors_api import connectors_store_of
from findesk.emulator.fin_agent_api import FinAgentApi, fin_agent_router, webhook_headers
from findesk.emulator.messenger import AgentNames, create_messenger, origin_of
from findesk.emulator.reporting_api import include_reporting
from findesk.emulator.reporting_store import RESOLUTION_STATES, RecordingMemory, ReportingStore
from findesk.emulator.sync import GrantFormat, HelpdeskConnection, SyncEngine
from findesk.emulator.transcripts import TranscriptStore
from findesk.fin_api.client import Variant
from findesk.kit.errors import Problem
from findesk.kit.http import load_json
from findesk.kit.streams import StreamSlots

TYPING_SECONDS = 5.0


@dataclass(frozen=True)
class EmulatorConfig:
    state_dir: Path
    helpdesk_base_url: str  # the helpdesk's Fin API, e.g. http://127.0.0.1:8080/api/fin
    token_url: str
    client_id: str
    client_secret: str
    fin_agent_id: str
    integration_id: str
    webhook_key: str
    content_token: str  # Bearer token of the AI Content API and the emulator's own pages
    variant: Variant = "rest"
    grant_format: GrantFormat = "json"
    retries: int = 5
    retry_delay: float = 60.0
    debounce: float = 1.0
    rate_limit: int = 167
    rate_window: float = 10.0
    live_streams_per_session: int = 8  # Messenger streams per visitor
    live_streams_max: int = 1000  # in all
    typing_seconds: float = TYPING_SECONDS  # how long one agent_typing event shows
    public_url: str | None = None  # where end users reach the emulator (its help centre's base)
    teammate_ids: tuple[int, ...] = DEFAULT_TEAMMATE_IDS  # valid Articles API author_ids
    object_types: tuple[str, ...] = ()  # custom object types Intercom knows (objects_api)
    reporting_job_seconds: float = 1.0  # how long a reporting export job stays pending
    # findesk's own chat (fin_agent_api, custom_channel): the keys the client must send, where
    # Fin's events go (from here only, never from a request) and how they are signed.
    fin_agent_token: str | None = None
    fin_agent_webhook_url: str | None = None
    fin_agent_webhook_secret: str | None = None
    fin_agent_sse: bool = False  # answers carry an sse_subscription_url (on public_url)
    custom_channel_token: str | None = None
    custom_channel_callback_url: str | None = None
    custom_channel_callback_token: str | None = None
    chat_retries: int = 8  # deliveries of chat events retried this often, then given up
    chat_retry_delay: float = 1.0  # first back-off; doubles each time
    chat_retry_max_delay: float = 60.0


class TypingBoard:
    """Who is typing where, for a few seconds after each typing event."""

    def __init__(self, seconds: float = TYPING_SECONDS) -> None:
        self.seconds = seconds
        self._until: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def show(self, conversation_id: str, agent: dict[str, Any]) -> None:
        with self._lock:
            self._until[conversation_id] = (time.monotonic() + self.seconds, agent)

    def current(self, conversation_id: str) -> dict[str, Any] | None:
        with self._lock:
            until, agent = self._until.get(conversation_id, (0.0, {}))
            return agent if until > time.monotonic() else None

    def clear(self, conversation_id: str, agent_ids: set[str]) -> None:
        """One of ``agent_ids`` wrote: their message replaces the indicator."""
        with self._lock:
            _until, agent = self._until.get(conversation_id, (0.0, {}))
            if str(agent.get("id")) in agent_ids:
                del self._until[conversation_id]


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)


def create_emulator(config: EmulatorConfig) -> FastAPI:
    if config.fin_agent_sse and not config.public_url:
        raise ValueError("fin_agent_sse needs public_url: the stream's URL is the emulator's")
    config.state_dir.mkdir(parents=True, exist_ok=True)
    content = create_content_api(
        f"sqlite:///{config.state_dir / 'content.db'}",
        [config.content_token],
        config.rate_limit,
        config.rate_window,
        articles={
            "teammate_ids": config.teammate_ids,
            "help_center_url": f"{config.public_url.rstrip('/')}/help"
            if config.public_url
            else DEFAULT_HELP_CENTER_URL,
        },
        object_types=config.object_types,
    )
    connection = HelpdeskConnection(
        config.helpdesk_base_url,
        config.token_url,
        config.client_id,
        config.client_secret,
        grant_format=config.grant_format,
        variant=config.variant,
    )
    transcripts = TranscriptStore(f"sqlite:///{config.state_dir / 'messenger.db'}")
    reporting = ReportingStore(store_of(content).engine, job_seconds=config.reporting_job_seconds)
    include_reporting(content, reporting)
    articles = articles_of(content)

    def library() -> list[PageLike]:
        # The content library's (English) pages and every published locale of the articles.
        return [*store_of(content).pages(), *articles.published_pages()]

    answerer = RetrievalAnswerer(
        library,
        fin_agent_id=config.fin_agent_id,
        actions=ConnectorActions(connectors_store_of(content)),
    )
    engine = SyncEngine(
        connection,
        answerer,
        config.fin_agent_id,
        retries=config.retries,
        retry_delay=config.retry_delay,
        debounce=config.debounce,
        memory=RecordingMemory(transcripts, reporting),
    )
    typing = TypingBoard(config.typing_seconds)

    def message_landed(conversation_id: str, messages: list[dict[str, Any]]) -> None:
        authors = {str((m.get("author") or {}).get("id")) for m in messages}
        typing.clear(conversation_id, authors)

    transcripts.on_new_messages(message_landed)

    def agents() -> list[dict[str, Any]] | None:
        reply = connection.api.get_agents()
        return reply.data if reply.ok else None

    closing = threading.Event()

    def deliverer(name: str, url: str | None, headers: Any) -> Deliverer:
        return Deliverer(
            name,
            url,
            headers,
            retries=config.chat_retries,
            retry_delay=config.chat_retry_delay,
            max_delay=config.chat_retry_max_delay,
            closing=closing,
            errors=engine.errors,
        )

    brain = FinBrain(answerer, config.fin_agent_id)
    fin_agent = FinAgentApi(
        brain,
        deliverer(
            "fin-agent",
            config.fin_agent_webhook_url,
            webhook_headers(config.fin_agent_webhook_secret),
        ),
        config.fin_agent_webhook_secret,
        sse_base_url=config.public_url if config.fin_agent_sse else None,
    )
    custom_channel = CustomChannel(
        brain,
        deliverer(
            "custom-channel",
            config.custom_channel_callback_url,
            callback_headers(config.custom_channel_callback_token),
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        closing.set()
        engine.close()
        transcripts.close()
        fin_agent.deliverer.close()
        custom_channel.deliverer.close()

    app = FastAPI(title="findesk Fin emulator", lifespan=lifespan, openapi_url=None)
    app.state.engine = engine
    app.state.typing = typing
    app.state.content_store = store_of(content)
    app.state.transcripts = transcripts
    app.state.reporting = reporting
    app.state.fin_agent = fin_agent
    app.state.custom_channel = custom_channel
    app.state.messenger_streams = StreamSlots(
        config.live_streams_per_session, config.live_streams_max
    )
    app.include_router(help_center_router(articles))
    app.include_router(
        create_messenger(
            engine,
            transcripts,
            typing,
            AgentNames(agents),
            streams=app.state.messenger_streams,
            helpdesk_origin=origin_of(config.helpdesk_base_url),
        )
    )

    def key_ok(request: Request) -> bool:
        given = request.headers.get("x-webhook-key", "").encode()
        return hmac.compare_digest(given, config.webhook_key.encode())

    def admin_ok(request: Request) -> bool:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), config.content_token.encode())

    app.include_router(
        fin_agent_router(
            fin_agent,
            IntercomGate(
                config.fin_agent_token,
                RateLimiter(config.rate_limit, config.rate_window),
                min_version=(2, 14),
            ),
            admin_ok,
        )
    )
    app.include_router(
        custom_channel_router(
            custom_channel,
            IntercomGate(
                config.custom_channel_token, RateLimiter(config.rate_limit, config.rate_window)
            ),
            admin_ok,
        )
    )

    @app.post("/hooks/standalone/custom_helpdesk_conversation_event/{integration_id}")
    async def conversation_event(request: Request, integration_id: str) -> JSONResponse:
        if not hmac.compare_digest(integration_id.encode(), config.integration_id.encode()):
            return _problem(404, "Unknown integration.")
        if not key_ok(request):
            return _problem(401, "X-Webhook-Key is missing or wrong.")
        try:
            body = load_json(await request.body())
        except Problem as exc:
            return _problem(exc.status, exc.detail)
        conversation_id = body.get("conversation_id") if isinstance(body, dict) else None
        if not isinstance(conversation_id, str) or not conversation_id:
            return _problem(400, "conversation_id is required.")
        event_type = body.get("event_type")
        if event_type is None:
            engine.notify(conversation_id)
            return JSONResponse({"status": "accepted"}, status_code=202)
        if event_type != "agent_typing":
            return _problem(400, "event_type must be omitted or agent_typing.")
        agent = (
            (body.get("data") or {}).get("agent") if isinstance(body.get("data"), dict) else None
        )
        required = ("id", "user_type", "name", "email")
        if not isinstance(agent, dict) or any(not agent.get(k) for k in required):
            return _problem(400, "data.agent needs id, user_type, name and email.")
        if agent["user_type"] != "agent":
            return _problem(400, "data.agent.user_type must be agent.")
        typing.show(conversation_id, {k: agent[k] for k in required})
        return JSONResponse({"status": "accepted"}, status_code=202)

    @app.get("/emulator/errors")
    def errors(request: Request) -> JSONResponse:
        if not admin_ok(request):
            return _problem(401, "A valid bearer token is required.")
        return JSONResponse(
            [
                {
                    "time": entry.time.isoformat(),
                    "conversation_id": entry.conversation_id,
                    "operation": entry.operation,
                    "status": entry.status,
                    "message": entry.message,
                }
                for entry in engine.errors.entries()
            ]
        )

    @app.get("/emulator/conversations/{conversation_id}/fetched")
    def fetched(request: Request, conversation_id: str) -> JSONResponse:
        """The conversation as Fin's latest sync run fetched it: its attributes are what a Fin
        workflow would see (e.g. those findesk writes at handover)."""
        if not admin_ok(request):
            return _problem(401, "A valid bearer token is required.")
        found = engine.last_fetched(conversation_id)
        if found is None:
            return _problem(404, "No sync run has fetched this conversation.")
        return JSONResponse(
            {
                "conversation_id": conversation_id,
                "fetched_at": found.fetched_at,
                "sync_runs": found.runs,
                "attributes": found.conversation.get("attributes") or {},
                "conversation": found.conversation,
            }
        )

    @app.get("/emulator/typing/{conversation_id}")
    def typing_state(request: Request, conversation_id: str) -> JSONResponse:
        if not admin_ok(request):
            return _problem(401, "A valid bearer token is required.")
        return JSONResponse({"typing": typing.current(conversation_id)})

    @app.post("/emulator/reporting/plant")
    async def plant(request: Request) -> JSONResponse:
        """``{"conversation_id", "fin_ai_agent_resolution_state"}``: what the Reporting Data
        Export reports for that conversation from now on (null: what happened)."""
        if not admin_ok(request):
            return _problem(401, "A valid bearer token is required.")
        try:
            body = load_json(await request.body())
        except Problem as exc:
            return _problem(exc.status, exc.detail)
        if not isinstance(body, dict) or not isinstance(body.get("conversation_id"), str):
            return _problem(400, "conversation_id is required.")
        state = body.get("fin_ai_agent_resolution_state")
        if state is not None and state not in RESOLUTION_STATES:
            return _problem(
                400, f"fin_ai_agent_resolution_state must be one of {RESOLUTION_STATES}."
            )
        outcome = reporting.plant(body["conversation_id"], state)
        if outcome is None:
            return _problem(404, "Fin has no record of that conversation.")
        return JSONResponse(
            {
                "conversation_id": outcome.conversation_id,
                "intercom_id": outcome.intercom_id,
                "fin_ai_agent_resolution_state": outcome.resolution_state,
            }
        )

    app.mount("/", content)
    return app
