"""The emulator's Custom Channel Events: findesk's chat pushes the visitor's events, and Fin's
output comes back as callbacks carrying the Authentication Token, in order, retried."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chat_emulator_support import CALLBACK_TOKEN, REFUNDS_URL, ChatEmulator, start_chat_emulator

from findesk.emulator.answerer import HANDOVER_TEXT, RESOLVED_TEXT

PREFIX = "/custom_channel_events"
LEAD = {"type": "lead", "external_id": "usr_lead", "name": None, "email": None}
USER = {"type": "user", "external_id": "usr_ada", "name": "Ada", "email": "ada@example.com"}


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatEmulator]:
    emulator = start_chat_emulator(tmp_path_factory.mktemp("custom-channel"))
    yield emulator
    emulator.stop()


def event(conversation_id: str, contact: dict[str, Any] = LEAD, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt_{uuid.uuid4().hex}",
        "external_conversation_id": conversation_id,
        "contact": contact,
        **extra,
    }


def callbacks(chat: ChatEmulator, conversation_id: str) -> list[dict[str, Any]]:
    return chat.channel_hooks.accepted("external_conversation_id", conversation_id)


def wait_callbacks(chat: ChatEmulator, conversation_id: str, count: int) -> list[dict[str, Any]]:
    assert chat.channel_hooks.wait(lambda: len(callbacks(chat, conversation_id)) >= count), (
        callbacks(chat, conversation_id)
    )
    return callbacks(chat, conversation_id)


def types(items: list[dict[str, Any]]) -> list[str]:
    return [
        f"resolution:{c['data']['state']}" if c["event_type"] == "resolution" else c["event_type"]
        for c in items
    ]


def open_and_ask(
    channel: httpx.Client, conversation_id: str, question: str, contact: dict[str, Any] = LEAD
) -> dict[str, Any]:
    opened = channel.post(f"{PREFIX}/notify_new_conversation", json=event(conversation_id, contact))
    assert opened.status_code == 200, opened.text
    asked = channel.post(
        f"{PREFIX}/notify_new_message", json=event(conversation_id, contact, body=question)
    )
    assert asked.status_code == 200, asked.text
    assert asked.json() == opened.json()
    return dict(opened.json())


def test_a_question_gets_typing_a_cited_answer_and_quick_replies(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        mapping = open_and_ask(channel, cid, "How long do refunds take?", USER)
    assert mapping["external_conversation_id"] == cid
    assert mapping["external_contact_id"] == "usr_ada"
    assert mapping["conversation_id"].isdigit() and mapping["contact_id"]

    sent = wait_callbacks(chat, cid, 3)
    assert types(sent) == ["typing", "new_message", "quick_replies"]
    for callback in sent:
        assert callback["external_conversation_id"] == cid
        assert callback["conversation_id"] == mapping["conversation_id"]
        assert callback["event_id"] and callback["created_at"].endswith("Z")
    answer = sent[1]["data"]["message"]
    assert "5 business days" in answer["body"] and f'href="{REFUNDS_URL}"' in answer["body"]
    assert answer["author"] == {"type": "fin", "name": "Fin"} and answer["id"]
    assert sent[2]["data"]["options"] == [
        {"id": "yes", "label": "Yes"},
        {"id": "no", "label": "No"},
        {"id": "human", "label": "Talk to a person"},
    ]
    assert len({c["event_id"] for c in sent}) == 3
    # Every callback carried the Authentication Token.
    for hit in chat.channel_hooks.hits:
        if json.loads(hit.raw)["external_conversation_id"] == cid:
            assert hit.headers["Authorization"] == f"Bearer {CALLBACK_TOKEN}"


def test_asking_for_a_person_hands_over_and_ends(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        open_and_ask(channel, cid, "I want to talk to a person")
        sent = wait_callbacks(chat, cid, 4)
        assert types(sent) == ["typing", "new_message", "handover", "end"]
        assert HANDOVER_TEXT in sent[1]["data"]["message"]["body"]
        assert sent[2]["data"] == {"reason": "Escalation requested by user"}
        # After the end, the visitor's messages are taken (Intercom's inbox has them); Fin
        # stays quiet.
        later = channel.post(
            f"{PREFIX}/notify_new_message", json=event(cid, body="How long do refunds take?")
        )
        assert later.status_code == 200
    with chat.admin() as admin:
        record = admin.get(f"/emulator/custom-channel/{cid}").json()
    assert record["state"] == "handed_over" and record["ended"] is True
    assert record["transcript"][-1] == {"author": "user", "body": "How long do refunds take?"}
    assert len(record["sent"]) == 4


def test_the_talk_to_a_person_quick_reply_hands_over(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        open_and_ask(channel, cid, "How long do refunds take?")
        wait_callbacks(chat, cid, 3)
        unknown = channel.post(
            f"{PREFIX}/notify_quick_reply_selected", json=event(cid, quick_reply_option_id="maybe")
        )
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["field"] == "quick_reply_option_id"
        chosen = channel.post(
            f"{PREFIX}/notify_quick_reply_selected", json=event(cid, quick_reply_option_id="human")
        )
        assert chosen.status_code == 200
    sent = wait_callbacks(chat, cid, 6)[3:]
    assert types(sent) == ["new_message", "handover", "end"]
    assert sent[1]["data"]["reason"] == "Escalation requested by user"


def test_a_thank_you_resolves_and_asks_for_feedback(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        open_and_ask(channel, cid, "How long do refunds take?")
        wait_callbacks(chat, cid, 3)
        assert channel.post(
            f"{PREFIX}/notify_new_message", json=event(cid, body="Thanks, that helped!")
        ).is_success
    sent = wait_callbacks(chat, cid, 8)[3:]
    assert types(sent) == [
        "typing",
        "new_message",
        "resolution:resolved",
        "resolution:feedback_requested",
        "end",
    ]
    assert RESOLVED_TEXT in sent[1]["data"]["message"]["body"]


def test_yes_resolves_and_no_offers_a_person(chat: ChatEmulator) -> None:
    yes, no = f"conv_{uuid.uuid4().hex}", f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        for cid in (yes, no):
            open_and_ask(channel, cid, "How long do refunds take?")
            wait_callbacks(chat, cid, 3)
        for cid, option in ((yes, "yes"), (no, "no")):
            assert channel.post(
                f"{PREFIX}/notify_quick_reply_selected",
                json=event(cid, quick_reply_option_id=option),
            ).is_success
    assert types(wait_callbacks(chat, yes, 7)[3:]) == [
        "new_message",
        "resolution:resolved",
        "resolution:feedback_requested",
        "end",
    ]
    after_no = wait_callbacks(chat, no, 5)[3:]
    assert types(after_no) == ["new_message", "quick_replies"]
    assert after_no[1]["data"]["options"] == [{"id": "human", "label": "Talk to a person"}]


def test_fin_asks_for_an_attribute_and_takes_it(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        assert channel.post(f"{PREFIX}/notify_new_conversation", json=event(cid)).is_success
    with chat.admin() as admin:
        asked = admin.post(
            f"/emulator/custom-channel/{cid}/attribute-request",
            json={"attribute": {"id": "email", "name": "Email"}, "prompt": "Your email?"},
        )
        assert asked.status_code == 202
        assert (
            httpx.post(
                f"{chat.base_url}/emulator/custom-channel/{cid}/attribute-request",
                json={"attribute": {"id": "email"}},
            ).status_code
            == 401
        )
    request = wait_callbacks(chat, cid, 1)[0]
    assert request["event_type"] == "attribute_request"
    assert request["data"] == {
        "attribute": {"id": "email", "name": "Email", "type": "string"},
        "prompt": "Your email?",
    }
    with chat.channel() as channel:
        missing = channel.post(
            f"{PREFIX}/notify_attribute_collected", json=event(cid, attribute={"id": "email"})
        )
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["field"] == "attribute.value"
        collected = channel.post(
            f"{PREFIX}/notify_attribute_collected",
            json=event(cid, attribute={"id": "email", "value": "lea@example.com"}),
        )
        assert collected.status_code == 200
    thanks = wait_callbacks(chat, cid, 2)[1]
    assert thanks["event_type"] == "new_message"
    with chat.admin() as admin:
        record = admin.get(f"/emulator/custom-channel/{cid}").json()
    assert record["attributes_collected"] == {"email": "lea@example.com"}
    assert record["contact"]["email"] == "lea@example.com"


def test_the_api_key_is_required_in_intercoms_shape(chat: ChatEmulator) -> None:
    for client in (chat.channel(token="wrong"), chat.channel(token=None), chat.fin()):
        with client as channel:
            for name in ("new_conversation", "new_message", "quick_reply_selected"):
                refused = channel.post(f"{PREFIX}/notify_{name}", json=event("conv_key", body="x"))
                assert refused.status_code == 401
                body = refused.json()
                assert body["type"] == "error.list" and body["request_id"]
                assert body["errors"][0]["code"] == "unauthorized"
    with chat.admin() as admin:
        assert admin.get("/emulator/custom-channel/conv_key").status_code == 404
    with chat.channel() as channel:  # the API key is not the emulator's admin token
        assert channel.get("/emulator/custom-channel/conv_key").status_code == 401


def test_the_base_event_is_validated(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    good = event(cid)
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({k: v for k, v in good.items() if k != "event_id"}, 400, "parameter_not_found",
         "event_id"),
        ({**good, "external_conversation_id": ""}, 400, "parameter_invalid",
         "external_conversation_id"),
        ({**good, "contact": {**LEAD, "type": "visitor"}}, 400, "parameter_invalid",
         "contact.type"),
        ({**good, "contact": {**USER, "email": None}}, 400, "parameter_not_found",
         "contact.email"),
        ({**good, "contact": {**LEAD, "email": "not-an-email"}}, 400, "parameter_invalid",
         "contact.email"),
        ({**good, "contact": {"type": "lead"}}, 400, "parameter_not_found",
         "contact.external_id"),
    ]  # fmt: skip
    with chat.channel() as channel:
        for body, status, code, field in cases:
            refused = channel.post(f"{PREFIX}/notify_new_conversation", json=body)
            assert refused.status_code == status, refused.text
            error = refused.json()["errors"][0]
            assert (error["code"], error.get("field")) == (code, field)
        no_body = channel.post(f"{PREFIX}/notify_new_message", json=event(cid))
        assert no_body.status_code == 400
        assert no_body.json()["errors"][0]["field"] == "body"
        unknown = channel.post(f"{PREFIX}/notify_new_message", json=event(cid, body="hi"))
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["code"] == "not_found"
    with chat.channel(**{"Intercom-Version": "9.9"}) as channel:
        bad_version = channel.post(f"{PREFIX}/notify_new_conversation", json=good)
        assert bad_version.status_code == 400
    with chat.admin() as admin:
        assert admin.get(f"/emulator/custom-channel/{cid}").status_code == 404


def test_a_repeated_event_id_is_taken_once(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel() as channel:
        open_and_ask(channel, cid, "How long do refunds take?")
        wait_callbacks(chat, cid, 3)
        question = event(cid, body="How long do refunds take?")
        first = channel.post(f"{PREFIX}/notify_new_message", json=question)
        again = channel.post(f"{PREFIX}/notify_new_message", json=question)
        assert first.json() == again.json()
    wait_callbacks(chat, cid, 6)
    with chat.admin() as admin:
        assert chat.channel_hooks.wait(
            lambda: (
                admin.get(f"/emulator/custom-channel/{cid}")
                .json()["received"][-1]
                .get("deduplicated")
                is True
            )
        )
        record = admin.get(f"/emulator/custom-channel/{cid}").json()
    assert len(record["sent"]) == 6  # Fin answered the repeated event once
    assert [m["author"] for m in record["transcript"]].count("user") == 2


def test_a_refused_callback_comes_again_with_the_same_content(chat: ChatEmulator) -> None:
    cid = f"conv_{uuid.uuid4().hex}"
    with chat.channel_hooks._cond:
        chat.channel_hooks.fail_next = 1
    with chat.channel() as channel:
        open_and_ask(channel, cid, "How long do refunds take?")
    sent = wait_callbacks(chat, cid, 3)
    assert types(sent) == ["typing", "new_message", "quick_replies"]
    hits = [
        h for h in chat.channel_hooks.hits if json.loads(h.raw)["external_conversation_id"] == cid
    ]
    assert [h.status for h in hits] == [500, 200, 200, 200]
    assert hits[0].raw == hits[1].raw
