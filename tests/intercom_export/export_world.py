"""findesk and the Fin emulator on loopback, with a fault tap in front of the emulator: Fin
answers and hands over in findesk, and findesk pulls Intercom's Reporting Data Export back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from emulator.content_api_server import ServedApp
from fastapi import FastAPI
from support.server import LiveServer, free_port
from support.tap import Tap, Traffic

from findesk.emulator.reporting_store import ReportingStore
from findesk.emulator.server import EmulatorConfig, create_emulator
from findesk.emulator.sync import RunResult, SyncEngine
from findesk.intercom_export.service import Exporter
from findesk.kit.settings import Settings

INTEGRATION = "export-integration"
KEY = "export-webhook-key"
ADMIN_TOKEN = "export-emulator-token"
HOOK = f"/hooks/standalone/custom_helpdesk_conversation_event/{INTEGRATION}"


@dataclass
class World:
    findesk: LiveServer
    emulator: ServedApp
    app: FastAPI
    traffic: Traffic

    @property
    def reporting(self) -> ReportingStore:
        store: ReportingStore = self.app.state.reporting
        return store

    @property
    def engine(self) -> SyncEngine:
        engine: SyncEngine = self.app.state.engine
        return engine

    def settings(self, **overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "database_url": self.findesk.database_url,
            "intercom_access_token": ADMIN_TOKEN,
            "intercom_api_url": self.emulator.base_url,
            "intercom_app_id": "app-1",
            "intercom_client_id": "client-1",
            **overrides,
        }
        return Settings(**fields)

    def exporter(self, **settings: Any) -> Exporter:
        return Exporter(
            self.findesk.db, self.settings(**settings), poll_seconds=0.05, retry_delays=(0.05,)
        )

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emulator.base_url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )

    def answered(self, name: str) -> RunResult:
        """A conversation Fin answers from the library (and so resolves)."""
        run = self.engine.start_conversation(
            {"object_id": f"visitor-{name}", "name": name, "email": f"{name}@example.com"},
            "<p>How long do refunds take to reach my card?</p>",
        )
        assert run.error is None and run.reply is not None, run.error
        return run

    def handed_over(self, name: str) -> RunResult:
        run = self.answered(name)
        assert run.conversation_id is not None
        asked = self.engine.user_says(run.conversation_id, "<p>I want to talk to a human</p>")
        assert asked.decision is not None and asked.decision.hand_over
        return run

    def stop(self) -> None:
        self.emulator.stop()
        self.findesk.stop()


def start_world(
    tmp: Path, database_url: str, *, job_seconds: float = 0.0, daily_export: bool = False
) -> World:
    """``daily_export``: findesk's own settings point at the emulator's Reporting Data Export,
    with ``FINDESK_INTERCOM_EXPORT_DAILY`` on."""
    port = free_port()
    settings: dict[str, Any] = {
        "fin_webhook_url": f"http://127.0.0.1:{port}{HOOK}",
        "fin_webhook_key": KEY,
        "notifier_poll_seconds": 0.2,
    }
    if daily_export:
        settings.update(
            intercom_access_token=ADMIN_TOKEN,
            intercom_api_url=f"http://127.0.0.1:{port}",
            intercom_app_id="app-1",
            intercom_client_id="client-1",
            intercom_export_daily=True,
        )
    findesk = LiveServer(database_url, settings).start()
    client_id, secret = findesk.new_oauth_client()
    app = create_emulator(
        EmulatorConfig(
            state_dir=tmp / "emulator",
            helpdesk_base_url=f"{findesk.base_url}/api/fin",
            token_url=f"{findesk.base_url}/oauth/token",
            client_id=client_id,
            client_secret=secret,
            fin_agent_id=findesk.fin_agent_id,
            integration_id=INTEGRATION,
            webhook_key=KEY,
            content_token=ADMIN_TOKEN,
            retry_delay=0.1,
            debounce=0.05,
            public_url=f"http://127.0.0.1:{port}",
            reporting_job_seconds=job_seconds,
            rate_limit=100_000,
        )
    )
    content = app.state.content_store
    source = content.create_source("https://help.example.com", "api", "active")
    content.upsert_page(
        source_id=source.id,
        external_id="refunds",
        title="Refunds",
        html="<p>Refunds are paid back to the original card within 5 business days.</p>",
        url="https://help.example.com/refunds",
        locale="en",
        ai_agent_availability=True,
        ai_copilot_availability=False,
    )
    traffic = Traffic()
    emulator = ServedApp(Tap(app, traffic), port=port)  # type: ignore[arg-type]
    return World(findesk, emulator, app, traffic)
