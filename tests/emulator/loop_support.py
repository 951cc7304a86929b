"""The Fin emulator wired to a live findesk, both on loopback: the whole loop in one process."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from content_api_server import ServedApp
from support.server import LiveServer, free_port

from findesk.emulator.server import EmulatorConfig, create_emulator

INTEGRATION = "demo-integration"
KEY = "emulator-webhook-key"
ADMIN_TOKEN = "emulator-content-token"
HOOK = f"/hooks/standalone/custom_helpdesk_conversation_event/{INTEGRATION}"
REFUNDS_URL = "https://help.example.com/refunds"


@dataclass
class Loop:
    findesk: LiveServer
    emulator: ServedApp

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emulator.base_url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )

    def stop(self) -> None:
        self.emulator.stop()
        self.findesk.stop()


def emulator_config(findesk: LiveServer, state_dir: Path, **overrides: Any) -> EmulatorConfig:
    client_id, secret = findesk.new_oauth_client()
    config = EmulatorConfig(
        state_dir=state_dir,
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
    )
    return replace(config, **overrides)


def start_loop(tmp: Path, database_url: str | None = None, **emulator_overrides: Any) -> Loop:
    """findesk (its notifier aimed at the emulator; on ``database_url``, default a SQLite file)
    and the emulator, with one page (refunds) in the content library; ``emulator_overrides``
    change the emulator's config."""
    port = free_port()
    findesk = LiveServer(
        database_url or f"sqlite:///{tmp / 'findesk.db'}",
        {
            "fin_webhook_url": f"http://127.0.0.1:{port}{HOOK}",
            "fin_webhook_key": KEY,
            "notifier_poll_seconds": 0.2,
        },
    ).start()
    overrides = {"public_url": f"http://127.0.0.1:{port}", **emulator_overrides}
    config = emulator_config(findesk, tmp / "emulator", **overrides)
    emulator = ServedApp(create_emulator(config), port=port)
    source = emulator.store.create_source("https://help.example.com", "api", "active")
    emulator.store.upsert_page(
        source_id=source.id,
        external_id="refunds",
        title="Refunds",
        html="<p>Refunds are paid back to the original card within 5 business days.</p>",
        url=REFUNDS_URL,
        locale="en",
        ai_agent_availability=True,
        ai_copilot_availability=False,
    )
    return Loop(findesk, emulator)
