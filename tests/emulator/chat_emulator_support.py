"""The Fin emulator with its chat channels on, live on loopback, its events going to two
receivers that check them as findesk does; one page (refunds) in its content library."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from chat_hook_receiver import HookReceiver
from content_api_server import ServedApp
from support.server import free_port

from findesk.emulator.server import EmulatorConfig, create_emulator

FIN_AGENT_TOKEN = "fin-agent-api-key"
WEBHOOK_SECRET = "fin-agent-webhook-secret"
CHANNEL_TOKEN = "custom-channel-api-key"
CALLBACK_TOKEN = "custom-channel-callback-token"
ADMIN_TOKEN = "emulator-admin-token"
REFUNDS_URL = "https://help.example.com/refunds"


@dataclass
class ChatEmulator:
    served: ServedApp
    fin_hooks: HookReceiver
    channel_hooks: HookReceiver

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def fin(self, token: str | None = FIN_AGENT_TOKEN, **headers: str) -> httpx.Client:
        return self._client(token, headers)

    def channel(self, token: str | None = CHANNEL_TOKEN, **headers: str) -> httpx.Client:
        return self._client(token, headers)

    def admin(self) -> httpx.Client:
        return self._client(ADMIN_TOKEN, {})

    def _client(self, token: str | None, headers: dict[str, str]) -> httpx.Client:
        all_headers = {"Intercom-Version": "2.14", **headers}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base_url, headers=all_headers, timeout=10)

    def stop(self) -> None:
        self.served.stop()
        self.fin_hooks.close()
        self.channel_hooks.close()


def start_chat_emulator(tmp: Path, **overrides: Any) -> ChatEmulator:
    fin_hooks = HookReceiver(secret=WEBHOOK_SECRET)
    channel_hooks = HookReceiver(token=CALLBACK_TOKEN)
    port = free_port()
    config = EmulatorConfig(
        public_url=f"http://127.0.0.1:{port}",
        state_dir=tmp,
        helpdesk_base_url="http://127.0.0.1:9/api/fin",  # no helpdesk: the chat needs none
        token_url="http://127.0.0.1:9/oauth/token",
        client_id="unused",
        client_secret="unused",
        fin_agent_id="fin",
        integration_id="demo",
        webhook_key="unused",
        content_token=ADMIN_TOKEN,
        fin_agent_token=FIN_AGENT_TOKEN,
        fin_agent_webhook_url=fin_hooks.url,
        fin_agent_webhook_secret=WEBHOOK_SECRET,
        custom_channel_token=CHANNEL_TOKEN,
        custom_channel_callback_url=channel_hooks.url,
        custom_channel_callback_token=CALLBACK_TOKEN,
        chat_retry_delay=0.05,
        chat_retry_max_delay=0.2,
    )
    served = ServedApp(create_emulator(replace(config, **overrides)), port=port)
    source = served.store.create_source("https://help.example.com", "api", "active")
    served.store.upsert_page(
        source_id=source.id,
        external_id="refunds",
        title="Refunds",
        html="<p>Refunds are paid back to the original card within 5 business days.</p>",
        url=REFUNDS_URL,
        locale="en",
        ai_agent_availability=True,
        ai_copilot_availability=True,
    )
    return ChatEmulator(served, fin_hooks, channel_hooks)
