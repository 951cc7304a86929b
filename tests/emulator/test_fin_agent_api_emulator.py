"""The emulator's Fin Agent API: findesk's chat calls /fin/start, /fin/reply and /fin/csat, and
Fin's events come back to a signed webhook, in order, retried until findesk takes them."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from chat_emulator_support import (
    FIN_AGENT_TOKEN,
    REFUNDS_URL,
    WEBHOOK_SECRET,
    ChatEmulator,
    start_chat_emulator,
)
from chat_hook_receiver import HookReceiver, signature_ok
from support.server import free_port

from findesk.emulator.answerer import HANDOVER_TEXT, RESOLVED_TEXT


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatEmulator]:
    emulator = start_chat_emulator(tmp_path_factory.mktemp("fin-agent"))
    yield emulator
    emulator.stop()


def now_iso(offset_seconds: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message(body: str, offset: float = 0) -> dict[str, Any]:
    return {"author": "user", "body": body, "timestamp": now_iso(offset)}


def start_body(conversation_id: str, body: str, **extra: Any) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "message": message(body),
        "user": {"id": "usr_1", "name": "Ada", "email": "ada@example.com"},
        **extra,
    }


def events_of(chat: ChatEmulator, conversation_id: str) -> list[dict[str, Any]]:
    return chat.fin_hooks.accepted("conversation_id", conversation_id)


def wait_events(chat: ChatEmulator, conversation_id: str, count: int) -> list[dict[str, Any]]:
    assert chat.fin_hooks.wait(lambda: len(events_of(chat, conversation_id)) >= count), events_of(
        chat, conversation_id
    )
    return events_of(chat, conversation_id)


def shape(events: list[dict[str, Any]]) -> list[str]:
    """``fin_replied``, ``status:escalated``, ``csat_requested``…"""
    return [
        f"status:{e['status']}" if e["event_name"] == "fin_status_updated" else e["event_name"]
        for e in events
    ]


def test_a_question_gets_a_cited_answer_then_the_done_signal(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.fin() as fin:
        answer = fin.post("/fin/start", json=start_body(cid, "How long do refunds take?"))
    assert answer.status_code == 200
    body = answer.json()
    assert body["conversation_id"] == cid and body["user_id"] == "usr_1"
    assert body["status"] == "thinking" and body["created_at_ms"].endswith("Z")

    events = wait_events(chat, cid, 2)
    assert shape(events) == ["fin_replied", "status:awaiting_user_reply"]
    replied = events[0]
    assert replied["message"]["author"] == "fin" and replied["message"]["id"]
    assert "5 business days" in replied["message"]["body"]
    assert f'href="{REFUNDS_URL}"' in replied["message"]["body"]  # the citation
    assert replied["user_id"] == "usr_1" and replied["stream_id"]
    assert replied["status"] == "awaiting_user_reply"  # stable versions' value
    # Every delivery was signed with the webhook secret over the exact bytes sent.
    for hit in chat.fin_hooks.hits:
        if hit.status == 200 and hit.body["conversation_id"] == cid:
            header = hit.headers["X-Fin-Agent-API-Webhook-Signature"]
            assert header.startswith("sha256=") and signature_ok(WEBHOOK_SECRET, hit.raw, header)


def test_asking_for_a_person_escalates_with_the_reason_then_completes(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.fin() as fin:
        assert fin.post("/fin/start", json=start_body(cid, "How long do refunds take?")).is_success
        wait_events(chat, cid, 2)
        reply = {
            "conversation_id": cid,
            "message": message("I want to talk to a person"),
            "user": {"id": "usr_1"},
        }
        answered = fin.post("/fin/reply", json=reply)
        assert answered.status_code == 200 and answered.json()["status"] == "thinking"
        events = wait_events(chat, cid, 5)[2:]
        assert shape(events) == ["fin_replied", "status:escalated", "status:complete"]
        assert HANDOVER_TEXT in events[0]["message"]["body"]
        assert events[1]["reason"] == "Escalation requested by user"
        assert "reason" not in events[2]
        # Control is back with the client: Fin takes no more replies on it.
        again = fin.post(
            "/fin/reply",
            json={**reply, "message": message("hello?", offset=1)},
        )
        assert again.status_code == 422
        assert again.json()["errors"][0]["code"] == "conversation_complete"
    with chat.admin() as admin:
        record = admin.get(f"/emulator/fin-agent/{cid}").json()
    assert record["status"] == "complete"
    assert [r["endpoint"] for r in record["received"]] == ["start", "reply"]
    assert [s["event"] for s in record["sent"]] == [
        "fin_replied",
        "fin_status_updated",
        "fin_replied",
        "fin_status_updated",
        "fin_status_updated",
    ]
    assert all(s["delivery"]["status"] == "delivered" for s in record["sent"])


def test_a_thank_you_resolves_and_asks_for_a_rating(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.fin() as fin:
        assert fin.post("/fin/start", json=start_body(cid, "How long do refunds take?")).is_success
        wait_events(chat, cid, 2)
        thanks = {
            "conversation_id": cid,
            "message": message("Thanks, that helped!"),
            "user": {"id": "usr_1"},
        }
        assert fin.post("/fin/reply", json=thanks).is_success
        events = wait_events(chat, cid, 6)[2:]
        assert shape(events) == [
            "fin_replied",
            "status:resolved",
            "csat_requested",
            "status:complete",
        ]
        assert RESOLVED_TEXT in events[0]["message"]["body"]
        assert events[2]["options"] == ["terrible", "bad", "ok", "good", "amazing"]

        rated = fin.post(
            "/fin/csat", json={"conversation_id": cid, "rating": "good", "remark": "Quick!"}
        )
        assert rated.status_code == 200
        assert rated.json()["rating"] == "good" and rated.json()["conversation_id"] == cid
        bad = fin.post("/fin/csat", json={"conversation_id": cid, "rating": "superb"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "rating"
        unknown = fin.post("/fin/csat", json={"conversation_id": "conv_nope", "rating": "ok"})
        assert unknown.status_code == 404
    with chat.admin() as admin:
        record = admin.get(f"/emulator/fin-agent/{cid}").json()
    assert record["csat"] == [{"rating": "good", "remark": "Quick!", "requested": True}]


def test_a_bad_token_is_refused_in_intercoms_shape(chat: ChatEmulator) -> None:
    body = start_body("conv_token", "How long do refunds take?")
    for client in (chat.fin(token="wrong"), chat.fin(token=None)):
        with client as fin:
            for path in ("/fin/start", "/fin/reply", "/fin/csat"):
                refused = fin.post(path, json=body)
                assert refused.status_code == 401
                error = refused.json()
                assert error["type"] == "error.list"
                assert error["request_id"] == refused.headers["X-Request-Id"]
                assert error["errors"] == [
                    {"code": "unauthorized", "message": "Access Token Invalid"}
                ]
    # Nothing was taken: the emulator knows no such conversation, and nothing was sent.
    with chat.admin() as admin:
        assert admin.get("/emulator/fin-agent/conv_token").status_code == 404
    assert chat.fin_hooks.accepted("conversation_id", "conv_token") == []
    # The record is the emulator's admin page: its own token, not the Fin Agent API key.
    with chat.fin() as fin:
        assert fin.get("/emulator/fin-agent/conv_token").status_code == 401


def first_error(response: httpx.Response) -> dict[str, Any]:
    errors = response.json()["errors"]
    assert response.json()["type"] == "error.list"
    return dict(errors[0])


def test_bad_input_is_refused_with_the_field_named(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    good = start_body(cid, "How long do refunds take?")
    eleven = {f"a{n}": n for n in range(11)}
    url = {"type": "url", "url": "https://example.com/a.pdf"}
    history = [{"author": "user", "body": "hi", "timestamp": now_iso()}] * 11
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({k: v for k, v in good.items() if k != "conversation_id"}, 400, "parameter_not_found",
         "conversation_id"),
        ({**good, "message": {**good["message"], "timestamp": "yesterday"}}, 400,
         "parameter_invalid", "message.timestamp"),
        ({**good, "message": {"author": "robot", "body": "x", "timestamp": now_iso()}}, 400,
         "parameter_invalid", "message"),
        ({**good, "user": {"name": "No id"}}, 400, "parameter_not_found", "user.id"),
        ({**good, "attachments": [url] * 11}, 422, "parameter_invalid", "attachments"),
        ({**good, "attachments": [{"type": "url", "url": "ftp://x/y"}]}, 400,
         "parameter_invalid", "attachments[0]"),
        ({**good, "attachments": [{"type": "file", "name": "a.png", "content_type": "image/png",
                                   "data": "not base64!"}]}, 400, "parameter_invalid",
         "attachments[0]"),
        ({**good, "user": {"id": "u", "attributes": eleven}}, 422, "parameter_invalid",
         "user.attributes"),
        ({**good, "conversation_metadata": {"attributes": eleven}}, 422, "parameter_invalid",
         "conversation_metadata.attributes"),
        ({**good, "conversation_metadata": {"history": history}}, 422, "parameter_invalid",
         "conversation_metadata.history"),
    ]  # fmt: skip
    with chat.fin() as fin:
        for body, status, code, field in cases:
            refused = fin.post("/fin/start", json=body)
            assert refused.status_code == status, (field, refused.text)
            error = first_error(refused)
            assert (error["code"], error.get("field")) == (code, field), refused.text
        not_json = fin.post(
            "/fin/start", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 400 and first_error(not_json)["code"] == "bad_request"
        unknown = fin.post("/fin/reply", json={**good, "conversation_id": "conv_never_started"})
        assert unknown.status_code == 404 and first_error(unknown)["code"] == "not_found"
    with chat.fin(**{"Intercom-Version": "2.13"}) as old:
        too_old = old.post("/fin/start", json=good)
        assert too_old.status_code == 400
        assert first_error(too_old)["code"] == "intercom_version_invalid"
    with chat.admin() as admin:  # none of them started Fin
        assert admin.get(f"/emulator/fin-agent/{cid}").status_code == 404


def test_limits_are_the_documented_ones_and_bad_attributes_are_reported(
    chat: ChatEmulator,
) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    ten = {f"a{n}": "x" for n in range(9)} | {"plan": {"not": "a scalar"}}
    body = start_body(
        cid,
        "How long do refunds take?",
        attachments=[{"type": "url", "url": "https://example.com/a.pdf"}] * 10,
        conversation_metadata={
            "history": [{"author": "agent", "body": "Hello!", "timestamp": now_iso(-60)}] * 10,
            "attributes": {"priority": "high"},
        },
    )
    body["user"]["attributes"] = ten
    with chat.fin() as fin:
        answer = fin.post("/fin/start", json=body)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["errors"]["user"]["attributes"]) == {"plan"}
    wait_events(chat, cid, 2)
    with chat.admin() as admin:
        record = admin.get(f"/emulator/fin-agent/{cid}").json()
    assert record["attributes"]["priority"] == "high"
    assert [m["author"] for m in record["transcript"]][:10] == ["agent"] * 10


def test_a_repeated_message_is_taken_once(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    body = start_body(cid, "How long do refunds take?")
    with chat.fin() as fin:
        first = fin.post("/fin/start", json=body)
        wait_events(chat, cid, 2)
        second = fin.post("/fin/start", json=body)  # a client's retry: same timestamp
    assert second.status_code == 200 and second.json() == first.json()
    with chat.admin() as admin:
        assert chat.fin_hooks.wait(
            lambda: (
                admin.get(f"/emulator/fin-agent/{cid}").json()["received"][-1].get("deduplicated")
                is True
            )
        )
        record = admin.get(f"/emulator/fin-agent/{cid}").json()
    assert len(record["sent"]) == 2  # Fin answered once
    assert shape(events_of(chat, cid)) == ["fin_replied", "status:awaiting_user_reply"]


def test_a_refused_delivery_comes_again_with_the_same_content(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.fin_hooks._cond:
        chat.fin_hooks.fail_next = 2
    with chat.fin() as fin:
        assert fin.post("/fin/start", json=start_body(cid, "How long do refunds take?")).is_success
    events = wait_events(chat, cid, 2)
    assert shape(events) == ["fin_replied", "status:awaiting_user_reply"]  # still in order
    hits = [h for h in chat.fin_hooks.hits if json.loads(h.raw)["conversation_id"] == cid]
    assert [h.status for h in hits] == [500, 500, 200, 200]
    assert hits[0].raw == hits[1].raw == hits[2].raw  # the same event, byte for byte
    assert (
        hits[0].headers["X-Fin-Agent-API-Webhook-Signature"]
        == hits[2].headers["X-Fin-Agent-API-Webhook-Signature"]
    )
    with chat.admin() as admin:
        record = admin.get(f"/emulator/fin-agent/{cid}").json()
    attempts = record["sent"][0]["delivery"]["attempts"]
    assert [a["status"] for a in attempts] == [500, 500, 200]


def test_preview_replies_say_replying(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.fin(**{"Intercom-Version": "Preview"}) as fin:
        assert fin.post("/fin/start", json=start_body(cid, "How long do refunds take?")).is_success
    events = wait_events(chat, cid, 2)
    assert events[0]["status"] == "replying"
    assert events[1]["status"] == "awaiting_user_reply"


def test_the_emulator_command_takes_the_chat_options(tmp_path) -> None:
    """`findesk emulator` reads the six chat variables: tokens, where events go, how signed."""
    secret, callback_token = "command-secret", "command-callback-token"
    fin_receiver = HookReceiver(secret=secret)
    channel_receiver = HookReceiver(token=callback_token)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINDESK_")}
    env |= {
        "FINDESK_DATA_DIR": str(tmp_path),
        "FINDESK_EMULATOR_FIN_AGENT_TOKEN": FIN_AGENT_TOKEN,
        "FINDESK_EMULATOR_FIN_AGENT_WEBHOOK_URL": fin_receiver.url,
        "FINDESK_EMULATOR_FIN_AGENT_WEBHOOK_SECRET": secret,
        "FINDESK_EMULATOR_CUSTOM_CHANNEL_TOKEN": "command-channel-key",
        "FINDESK_EMULATOR_CUSTOM_CHANNEL_CALLBACK_URL": channel_receiver.url,
        "FINDESK_EMULATOR_CUSTOM_CHANNEL_CALLBACK_TOKEN": callback_token,
    }
    args = ["--client-id", "c", "--client-secret", "s", "--webhook-key", "k"]
    args += ["--content-token", "admin", "--fin-agent-id", "fin", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "findesk", "emulator", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        answer: httpx.Response | None = None
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {FIN_AGENT_TOKEN}"}
        ) as fin:
            while answer is None:
                assert process.poll() is None and time.monotonic() < deadline
                try:
                    answer = fin.post("/fin/start", json=start_body("conv_cmd", "Hello there"))
                except httpx.TransportError:
                    time.sleep(0.1)  # the server is still starting: poll its port
        assert answer.status_code == 200
        # Signed with the secret from the environment, sent to the URL from the environment.
        assert fin_receiver.wait(
            lambda: len(fin_receiver.accepted("conversation_id", "conv_cmd")) >= 2
        )
        contact = {"type": "lead", "external_id": "usr_cmd"}
        with httpx.Client(
            base_url=base, headers={"Authorization": "Bearer command-channel-key"}
        ) as channel:
            for path, extra in (
                ("notify_new_conversation", {}),
                ("notify_new_message", {"body": "Hi"}),
            ):
                sent = channel.post(
                    f"/custom_channel_events/{path}",
                    json={
                        "event_id": f"evt_{path}",
                        "external_conversation_id": "conv_cmd",
                        "contact": contact,
                        **extra,
                    },
                )
                assert sent.status_code == 200, sent.text
        # Fin's callbacks carry the Authentication Token from the environment.
        assert channel_receiver.wait(
            lambda: len(channel_receiver.accepted("external_conversation_id", "conv_cmd")) >= 2
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        fin_receiver.close()
        channel_receiver.close()


def test_a_delivery_given_up_shows_in_the_error_log(tmp_path) -> None:
    chat = start_chat_emulator(tmp_path, chat_retries=1)
    cid = f"conv_{uuid.uuid4().hex}"
    try:
        with chat.fin_hooks._cond:
            chat.fin_hooks.fail_next = 100  # findesk is down for good
        with chat.fin() as fin:
            assert fin.post(
                "/fin/start", json=start_body(cid, "How long do refunds take?")
            ).is_success
        with chat.admin() as admin:

            def given_up() -> bool:
                sent = admin.get(f"/emulator/fin-agent/{cid}").json()["sent"]
                return len(sent) == 2 and all(s["delivery"]["status"] == "failed" for s in sent)

            assert chat.fin_hooks.wait(given_up)
            record = admin.get(f"/emulator/fin-agent/{cid}").json()
            errors = admin.get("/emulator/errors").json()
        # Each event was tried twice (one retry), in order: the second only after the first.
        assert [len(s["delivery"]["attempts"]) for s in record["sent"]] == [2, 2]
        statuses = [json.loads(h.raw)["event_name"] for h in chat.fin_hooks.hits]
        assert statuses == [
            "fin_replied",
            "fin_replied",
            "fin_status_updated",
            "fin_status_updated",
        ]
        logged = [e for e in errors if e["conversation_id"] == cid]
        assert {e["operation"] for e in logged} == {
            "fin-agent:fin_replied",
            "fin-agent:fin_status_updated",
        }
        assert any("gave up" in e["message"] for e in logged)
        assert all(e["status"] == 500 for e in logged)
    finally:
        chat.stop()


def read_stream(url: str) -> list[dict[str, Any]]:
    """The events of one SSE connection, until the emulator ends it."""
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", url, timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


def test_sse_streams_the_answer_in_chunks_then_closes(tmp_path) -> None:
    chat = start_chat_emulator(tmp_path, fin_agent_sse=True)
    cid = f"conv_{uuid.uuid4().hex}"
    try:
        with chat.fin() as fin:
            started = fin.post("/fin/start", json=start_body(cid, "How long do refunds take?"))
        url = started.json()["sse_subscription_url"]
        assert url.startswith(f"{chat.base_url}/fin-agent/event-stream?channels=")
        assert f"fin_agent_api:emulator:{cid}" in url and url.endswith("&rewind=2m")
        events = read_stream(url)  # ends by itself after the done signal
        names = [e["event_name"] for e in events]
        assert names[-2:] == ["fin_replied", "fin_status_updated"]
        assert events[-1]["status"] == "awaiting_user_reply"
        chunks = [e for e in events if e["event_name"] == "fin_reply_chunk"]
        assert len(chunks) >= 2 and names[: len(chunks)] == ["fin_reply_chunk"] * len(chunks)
        assert [c["chunk_index"] for c in chunks] == list(range(len(chunks)))
        texts = [c["chunk_text"] for c in chunks]
        assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
        assert "5 business days" in texts[-1] and "<" not in texts[-1]  # plain text
        assert {c["stream_id"] for c in chunks} == {events[-2]["stream_id"]}
        assert httpx.get(url).status_code == 401  # revoked once Fin was done
        assert httpx.get(url.replace("accessToken=", "accessToken=x")).status_code == 401
        # The webhook has the same events, without the chunks (SSE only).
        hooked = wait_events(chat, cid, 2)
        assert [e["event_name"] for e in hooked] == ["fin_replied", "fin_status_updated"]
        assert hooked[0]["message"]["id"] == events[-2]["message"]["id"]

        with chat.fin() as fin:
            reply = {
                "conversation_id": cid,
                "message": message("I want to talk to a person"),
                "user": {"id": "usr_1"},
            }
            replied = fin.post("/fin/reply", json=reply).json()
        assert "rewind" not in replied["sse_subscription_url"]
        second = read_stream(replied["sse_subscription_url"])
        assert shape(second) == ["fin_replied", "status:escalated", "status:complete"]
    finally:
        chat.stop()
