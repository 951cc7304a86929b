"""The whole loop with the emulator's server: findesk's notifier calls the emulator's webhook,
the emulator pulls the conversation and answers in findesk as Fin; typing shows as Fin shows it."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
from loop_support import ADMIN_TOKEN, HOOK, INTEGRATION, KEY, Loop
from sqlalchemy import select
from support.receiver import eventually
from support.server import free_port

from findesk.conversations.models import Message

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


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
            ADMIN_TOKEN,
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
                        f"{base}/emulator/errors",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
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
        pages = httpx.get(
            f"{base}/ai/external_pages", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert pages.status_code == 200 and pages.json()["type"] == "list"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_every_emulator_body_parser_refuses_nesting_too_deep_with_a_400(loop: Loop) -> None:
    """The webhook, the Messenger and the AI Content API share findesk's one JSON parser."""
    nested = b"[" * 100_000 + b"]" * 100_000
    json_type = {"content-type": "application/json"}
    with httpx.Client(base_url=loop.emulator.base_url) as http:
        hook = http.post(HOOK, content=nested, headers={**json_type, "X-Webhook-Key": KEY})
        assert hook.status_code == 400
        visitor = http.post("/messenger/api/visitor", content=nested, headers=json_type)
        assert visitor.status_code == 400
        content = http.post(
            "/ai/content_import_sources",
            content=nested,
            headers={**json_type, "Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert content.status_code == 400
