"""The whole loop with the emulator's server: findesk's notifier calls the emulator's webhook,
the emulator pulls the conversation and answers in findesk as Fin; typing shows as Fin shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from content_api_server import ServedApp
from sqlalchemy import select
from support.receiver import eventually
from support.server import LiveServer, free_port

from findesk.conversations.models import Message
from findesk.emulator.server import EmulatorConfig, create_emulator

INTEGRATION = "demo-integration"
KEY = "emulator-webhook-key"
TOKEN = "emulator-content-token"
HOOK = f"/hooks/standalone/custom_helpdesk_conversation_event/{INTEGRATION}"


@dataclass
class Loop:
    findesk: LiveServer
    emulator: ServedApp

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.emulator.base_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    tmp = tmp_path_factory.mktemp("loop")
    port = free_port()
    findesk = LiveServer(
        f"sqlite:///{tmp / 'findesk.db'}",
        {
            "fin_webhook_url": f"http://127.0.0.1:{port}{HOOK}",
            "fin_webhook_key": KEY,
            "notifier_poll_seconds": 0.2,
        },
    ).start()
    client_id, secret = findesk.new_oauth_client()
    config = EmulatorConfig(
        state_dir=tmp / "emulator",
        helpdesk_base_url=f"{findesk.base_url}/api/fin",
        token_url=f"{findesk.base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
        fin_agent_id=findesk.fin_agent_id,
        integration_id=INTEGRATION,
        webhook_key=KEY,
        content_token=TOKEN,
        retry_delay=0.1,
        debounce=0.05,
    )
    emulator = ServedApp(create_emulator(config), port=port)
    source = emulator.store.create_source("https://help.example.com", "api", "active")
    emulator.store.upsert_page(
        source_id=source.id,
        external_id="refunds",
        title="Refunds",
        html="<p>Refunds are paid back to the original card within 5 business days.</p>",
        url="https://help.example.com/refunds",
        locale="en",
        ai_agent_availability=True,
        ai_copilot_availability=False,
    )
    yield Loop(findesk, emulator)
    emulator.stop()
    findesk.stop()


def fin_messages(loop: Loop, conversation_id: str) -> list[Message]:
    with loop.findesk.db.read_session() as session:
        return list(
            session.scalars(
                select(Message).where(
                    Message.conversation_id == conversation_id,
                    Message.author_agent_id == loop.findesk.fin_agent_id,
                )
            )
        )


def test_the_webhook_checks_integration_and_key(loop: Loop) -> None:
    with httpx.Client(base_url=loop.emulator.base_url) as http:
        body = {"conversation_id": "conv_x"}
        assert (
            http.post(
                "/hooks/standalone/custom_helpdesk_conversation_event/other",
                json=body,
                headers={"X-Webhook-Key": KEY},
            ).status_code
            == 404
        )
        assert http.post(HOOK, json=body, headers={"X-Webhook-Key": "wrong"}).status_code == 401
        assert http.post(HOOK, json=body).status_code == 401
        assert http.post(HOOK, json={}, headers={"X-Webhook-Key": KEY}).status_code == 400
        bad_typing = {"conversation_id": "c", "event_type": "agent_typing", "data": {"agent": {}}}
        assert http.post(HOOK, json=bad_typing, headers={"X-Webhook-Key": KEY}).status_code == 400


def test_a_change_in_findesk_reaches_fin_which_answers(loop: Loop) -> None:
    # A conversation Fin owns, whose end user wrote again through another channel of findesk's:
    # findesk's notifier tells Fin (the emulator), which pulls it and answers from its library.
    world = loop.findesk.fin_world()
    conversation, _ = world.conversation(body="<p>Hello!</p>")
    cid = conversation["id"]
    with loop.findesk.agent_http("ops@example.com", "Ops") as agent:
        # An agent's private note changes the conversation without taking it from Fin.
        assert agent.post(
            f"/conversations/{cid}/messages",
            json={"body": "<p>VIP customer</p>", "visibility": "private"},
        ).is_success
    world.user_says(cid, conversation["user"]["id"], "<p>How long do refunds take?</p>")
    with loop.findesk.agent_http("ops2@example.com", "Ops Two") as agent:
        assert agent.patch(f"/conversations/{cid}", json={"tags": ["vip"]}).is_success
    assert eventually(
        lambda: any("5 business days" in (m.body or "") for m in fin_messages(loop, cid)),
        timeout=20,
    )
    with loop.admin() as admin:
        assert admin.get("/emulator/errors").json() == []


def test_typing_shows_for_a_few_seconds(loop: Loop) -> None:
    world = loop.findesk.fin_world()
    conversation, _ = world.conversation()
    cid = conversation["id"]
    with loop.findesk.agent_http("typist@example.com", "Tia Typist") as agent:
        assert agent.post(f"/conversations/{cid}/typing").status_code == 202
    with loop.admin() as admin:
        assert eventually(lambda: admin.get(f"/emulator/typing/{cid}").json()["typing"] is not None)
        shown = admin.get(f"/emulator/typing/{cid}").json()["typing"]
        assert shown["name"] == "Tia Typist" and shown["user_type"] == "agent"
        assert admin.get("/emulator/typing/conv_other").json() == {"typing": None}
        assert httpx.get(f"{loop.emulator.base_url}/emulator/typing/{cid}").status_code == 401


def test_the_findesk_emulator_command_serves_the_loop(loop: Loop, tmp_path) -> None:
    client_id, secret = loop.findesk.new_oauth_client()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env["FINDESK_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "findesk",
            "emulator",
            "--helpdesk-url",
            loop.findesk.base_url,
            "--client-id",
            client_id,
            "--client-secret",
            secret,
            "--webhook-key",
            KEY,
            "--content-token",
            TOKEN,
            "--integration-id",
            INTEGRATION,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return (
                    httpx.get(
                        f"{base}/emulator/errors", headers={"Authorization": f"Bearer {TOKEN}"}
                    ).status_code
                    == 200
                )
            except httpx.TransportError:
                return False

        assert eventually(up, timeout=30), process.stdout.read() if process.poll() else "no start"
        # The Fin agent was found through Get agents, and a sync event starts a run.
        conversation, _ = loop.findesk.fin_world().conversation()
        accepted = httpx.post(
            f"{base}{HOOK}",
            json={"conversation_id": conversation["id"]},
            headers={"X-Webhook-Key": KEY},
        )
        assert accepted.status_code == 202
        pages = httpx.get(f"{base}/ai/external_pages", headers={"Authorization": f"Bearer {TOKEN}"})
        assert pages.status_code == 200 and pages.json()["type"] == "list"
    finally:
        process.terminate()
        process.wait(timeout=15)
