"""Intercom's Custom Channel Events ("Fin over API"), emulated: the four ``notify_*`` endpoints and
the callbacks Intercom sends to the integrator (``shared/spec/intercom-api.md`` section 3).

Requests
    * ``POST /custom_channel_events/notify_new_conversation``, ``notify_new_message`` (``body``),
      ``notify_quick_reply_selected`` (``quick_reply_option_id``), ``notify_attribute_collected``
      (``attribute: {id, value}``), ``Authorization: Bearer <the API key>``
      (``EmulatorConfig.custom_channel_token``; none configured: every call is 401),
      ``Intercom-Version`` accepted (optional, any version Intercom knows), rate limited as the
      other APIs; errors in Intercom's ``error.list`` shape.
    * The base event: ``event_id``, ``external_conversation_id`` (non-empty strings) and
      ``contact`` ``{type: user|lead, external_id, name, email}``; as Intercom's spec says,
      ``name`` and ``email`` are required when ``type`` is ``user``; an ``email`` must look like
      one. Missing: 400 ``parameter_not_found``; malformed: 400 ``parameter_invalid``.
    * The answer is 200 ``{external_conversation_id, conversation_id, external_contact_id,
      contact_id}``, the last ones the emulator's own ids (stable per conversation and contact).
    * *Decisions:* a repeated ``event_id`` gets the first answer again and changes nothing (it
      is the integrator's dedupe key). An event other than ``notify_new_conversation`` for a
      conversation Intercom does not know is 404 ``not_found``. A quick reply id that is not
      one of the options Fin offered last is 400 ``parameter_invalid``.

What Fin does (its workflow's "Let Fin answer" step, the emulator's answerer), as callbacks:

* a message while Fin has the conversation: ``typing``, then ``new_message`` with Fin's answer
  (cited) and ``quick_replies`` "Did that help?" (``yes`` / ``no`` / ``human`` "Talk to a
  person"); a "couldn't find" reply is followed by the ``human`` option alone;
* a request for a person (by message or the ``human`` option), or nothing to answer from:
  ``new_message`` (the handover sentence), ``handover`` ``{reason}`` (Intercom's escalation
  reasons), ``end``;
* a thank-you after an answer (or the ``yes`` option): ``new_message``, ``resolution``
  ``resolved``, ``resolution`` ``feedback_requested``, ``end``;
* ``no``: Fin says sorry and offers the ``human`` option.
* After ``end``, messages are recorded (they are in Intercom's inbox) and Fin stays quiet.
* ``POST /emulator/custom-channel/{external_conversation_id}/attribute-request`` (the admin
  token) ``{attribute: {id, name?, type?}, prompt?}`` makes Fin ask for an attribute (its data
  collector step): an ``attribute_request`` callback; when ``notify_attribute_collected``
  brings it, Fin thanks the user (``new_message``).

Callbacks go to ``EmulatorConfig.custom_channel_callback_url`` as

    {"event_id", "event_type", "external_conversation_id", "conversation_id", "created_at", "data"}

with ``Authorization: Bearer <the Authentication Token>`` when one is configured, in order per
conversation, retried with back-off on a non-2xx answer (``channel_store.Deliverer``).
``GET /emulator/custom-channel/{external_conversation_id}`` (the admin token) shows what was
received and sent.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from findesk.emulator.answerer import HANDOVER_TEXT, RESOLVED_TEXT
from findesk.emulator.channel_store import (
    EMAIL_RE,
    ESCALATION_REASONS,
    ChatState,
    Deliverer,
    Delivery,
    FinBrain,
    FinTurn,
    IntercomGate,
    Lanes,
    hex_id,
    iso_ms,
    numeric_id,
    object_field,
    optional_text,
    plain_text,
    required,
    text_field,
)
from findesk.emulator.content_api import ApiError, error_body
from findesk.kit.errors import Problem
from findesk.kit.http import load_json

FIN_NAME = "Fin"
HELPED_PROMPT = "<p>Did that help?</p>"
SORRY_TEXT = (
    "<p>Sorry that didn't help. Could you rephrase your question? "
    "You can also talk to a person.</p>"
)
PERSON_PROMPT = "<p>Would you like to talk to a person?</p>"
THANKS_TEXT = "<p>Thanks, I've noted that.</p>"
OPTION_YES = {"id": "yes", "label": "Yes"}
OPTION_NO = {"id": "no", "label": "No"}
OPTION_HUMAN = {"id": "human", "label": "Talk to a person"}
CONTACT_TYPES = ("user", "lead")


@dataclass
class ChannelConversation:
    external_conversation_id: str
    conversation_id: str
    contact: dict[str, Any]
    contact_id: str
    chat: ChatState
    state: str = "fin"  # fin | handed_over | resolved: Fin's workflow, until it ends
    ended: bool = False
    options: list[dict[str, str]] = field(default_factory=list)  # the quick replies offered
    requested: dict[str, dict[str, Any]] = field(default_factory=dict)  # attribute id -> request
    collected: dict[str, str] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Delivery] = field(default_factory=list)

    def mapping(self) -> dict[str, str]:
        return {
            "external_conversation_id": self.external_conversation_id,
            "conversation_id": self.conversation_id,
            "external_contact_id": str(self.contact["external_id"]),
            "contact_id": self.contact_id,
        }


@dataclass(frozen=True)
class BaseEvent:
    event_id: str
    external_conversation_id: str
    contact: dict[str, Any]


def parse_base(body: dict[str, Any]) -> BaseEvent:
    event_id = text_field(body, "event_id")
    external_conversation_id = text_field(body, "external_conversation_id")
    given = object_field(body, "contact")
    kind = text_field(given, "type", "contact.type")
    if kind not in CONTACT_TYPES:
        raise ApiError(
            400, "parameter_invalid", "contact.type must be user or lead", "contact.type"
        )
    contact: dict[str, Any] = {
        "type": kind,
        "external_id": text_field(given, "external_id", "contact.external_id"),
    }
    if kind == "user":
        contact["name"] = text_field(given, "name", "contact.name")
        contact["email"] = text_field(given, "email", "contact.email")
    else:
        contact["name"] = optional_text(given, "name", "contact.name")
        contact["email"] = optional_text(given, "email", "contact.email")
    if contact["email"] and not EMAIL_RE.match(contact["email"]):
        raise ApiError(
            400, "parameter_invalid", "contact.email must be an email address", "contact.email"
        )
    return BaseEvent(event_id, external_conversation_id, contact)


class CustomChannel:
    """The emulated Custom Channel's state and behaviour (the router is
    :func:`custom_channel_router`)."""

    def __init__(self, brain: FinBrain, deliverer: Deliverer) -> None:
        self.brain = brain
        self.deliverer = deliverer
        self._conversations: dict[str, ChannelConversation] = {}
        self._contacts: dict[str, str] = {}  # external id -> Intercom's contact id
        self._events: dict[str, dict[str, Any]] = {}  # event id -> the answer given
        self._lock = threading.RLock()
        self._turns = Lanes("custom-channel-turns", self._turn_failed)

    # -- the four notifications --

    def new_conversation(self, body: dict[str, Any], _version: str) -> dict[str, Any]:
        return self._take(body, "notify_new_conversation", None)

    def new_message(self, body: dict[str, Any], _version: str) -> dict[str, Any]:
        # A string, possibly empty (a message of attachments only): Fin has nothing to answer.
        text = required(body, "body")
        if not isinstance(text, str):
            raise ApiError(400, "parameter_invalid", "body must be a string", "body")
        return self._take(body, "notify_new_message", lambda c: self._message(c, text))

    def quick_reply_selected(self, body: dict[str, Any], _version: str) -> dict[str, Any]:
        option_id = text_field(body, "quick_reply_option_id")

        def check(conversation: ChannelConversation) -> Callable[[], None]:
            option = next((o for o in conversation.options if o["id"] == option_id), None)
            if option is None:
                raise ApiError(
                    400,
                    "parameter_invalid",
                    "quick_reply_option_id is not one of the options offered",
                    "quick_reply_option_id",
                )
            conversation.options = []
            return lambda: self._quick_reply(conversation, option)

        return self._take(body, "notify_quick_reply_selected", check=check)

    def attribute_collected(self, body: dict[str, Any], _version: str) -> dict[str, Any]:
        attribute = object_field(body, "attribute")
        attribute_id = text_field(attribute, "id", "attribute.id")
        value = required(attribute, "value", "attribute.value")
        if not isinstance(value, str):
            raise ApiError(
                400, "parameter_invalid", "attribute.value must be a string", "attribute.value"
            )
        return self._take(
            body,
            "notify_attribute_collected",
            lambda c: self._attribute(c, attribute_id, value),
        )

    # -- the emulator's own controls --

    def request_attribute(
        self, external_conversation_id: str, attribute: dict[str, Any], prompt: str
    ) -> bool:
        with self._lock:
            conversation = self._conversations.get(external_conversation_id)
            if conversation is None:
                return False
            conversation.requested[str(attribute["id"])] = attribute
        self._turns.submit(
            external_conversation_id,
            lambda: self._callback(
                conversation, "attribute_request", {"attribute": attribute, "prompt": prompt}
            ),
        )
        return True

    def record(self, external_conversation_id: str) -> dict[str, Any] | None:
        with self._lock:
            conversation = self._conversations.get(external_conversation_id)
            if conversation is None:
                return None
            return {
                **conversation.mapping(),
                "contact": dict(conversation.contact),
                "state": conversation.state,
                "ended": conversation.ended,
                "quick_replies": list(conversation.options),
                "attributes_requested": list(conversation.requested.values()),
                "attributes_collected": dict(conversation.collected),
                "transcript": [
                    {
                        "author": "user" if m["author"]["user_type"] == "end_user" else "fin",
                        "body": m["body"],
                    }
                    for m in conversation.chat.messages
                ],
                "received": list(conversation.received),
                "sent": [d.to_json() for d in conversation.sent],
            }

    def wait_idle(self, timeout: float) -> bool:
        return self._turns.wait_idle(timeout) and self.deliverer.wait_idle(timeout)

    # -- inside --

    def _take(
        self,
        body: dict[str, Any],
        endpoint: str,
        then: Callable[[ChannelConversation], None] | None = None,
        *,
        check: Callable[[ChannelConversation], Callable[[], None]] | None = None,
    ) -> dict[str, Any]:
        event = parse_base(body)
        with self._lock:
            seen = self._events.get(event.event_id)
            if seen is not None:
                conversation = self._conversations.get(event.external_conversation_id)
                if conversation is not None:
                    conversation.received.append(
                        {"endpoint": endpoint, "at": iso_ms(), "body": body, "deduplicated": True}
                    )
                return seen
            conversation = self._conversations.get(event.external_conversation_id)
            if conversation is None:
                if endpoint != "notify_new_conversation":
                    raise ApiError(
                        404, "not_found", "Conversation not found", "external_conversation_id"
                    )
                contact_id = self._contacts.setdefault(str(event.contact["external_id"]), hex_id())
                conversation = ChannelConversation(
                    event.external_conversation_id,
                    numeric_id(),
                    event.contact,
                    contact_id,
                    ChatState(event.external_conversation_id),
                )
                self._conversations[event.external_conversation_id] = conversation
            else:
                conversation.contact = {**conversation.contact, **event.contact}
                if not event.contact.get("email") and conversation.collected.get("email"):
                    conversation.contact["email"] = conversation.collected["email"]
            job: Callable[[], None] | None = None
            if check is not None:
                job = check(conversation)
            elif then is not None:
                target = conversation
                job = lambda: then(target)  # noqa: E731
            answer = conversation.mapping()
            self._events[event.event_id] = answer
            conversation.received.append({"endpoint": endpoint, "at": iso_ms(), "body": body})
        if job is not None:
            self._turns.submit(event.external_conversation_id, job)
        return answer

    def _fins_turn(self, conversation: ChannelConversation) -> bool:
        with self._lock:
            return conversation.state == "fin" and not conversation.ended

    def _user_says(self, conversation: ChannelConversation, html: str) -> None:
        with self._lock:
            conversation.chat.add(str(conversation.contact["external_id"]), "end_user", html)

    def _message(self, conversation: ChannelConversation, text: str) -> None:
        if not self._fins_turn(conversation) or not plain_text(text):
            self._user_says(conversation, text)  # nothing for Fin to answer
            return
        self._callback(conversation, "typing", {})
        user = {
            "id": conversation.contact["external_id"],
            "name": conversation.contact.get("name"),
            "email": conversation.contact.get("email"),
            "attributes": dict(conversation.collected),
        }
        turn = self.brain.turn(conversation.chat, text, user)
        self._after(conversation, turn)

    def _after(self, conversation: ChannelConversation, turn: FinTurn) -> None:
        if turn.reply_html is not None:  # already in the transcript (the brain put it there)
            self._say(conversation, turn.reply_html, record=False)
        if turn.kind == "answered":
            self._offer(conversation, HELPED_PROMPT, [OPTION_YES, OPTION_NO, OPTION_HUMAN])
        elif turn.kind == "fallback":
            self._offer(conversation, PERSON_PROMPT, [OPTION_HUMAN])
        elif turn.kind == "handover":
            self._hand_over(conversation, turn.reason or ESCALATION_REASONS["human_requested"])
        elif turn.kind == "resolved":
            self._resolve(conversation)

    def _quick_reply(self, conversation: ChannelConversation, option: dict[str, str]) -> None:
        self._user_says(conversation, option["label"])
        if not self._fins_turn(conversation):
            return
        if option["id"] == "yes":
            self._say(conversation, f"<p>{RESOLVED_TEXT}</p>")
            self._resolve(conversation)
        elif option["id"] == "no":
            self._say(conversation, SORRY_TEXT)
            self._offer(conversation, PERSON_PROMPT, [OPTION_HUMAN])
        else:
            self._say(conversation, f"<p>{HANDOVER_TEXT}</p>")
            self._hand_over(conversation, ESCALATION_REASONS["human_requested"])

    def _attribute(self, conversation: ChannelConversation, attribute_id: str, value: str) -> None:
        with self._lock:
            conversation.collected[attribute_id] = value
            if attribute_id == "email":
                conversation.contact["email"] = value
            asked = conversation.requested.pop(attribute_id, None) is not None
        if asked and not conversation.ended:
            self._say(conversation, THANKS_TEXT)

    def _say(self, conversation: ChannelConversation, html: str, *, record: bool = True) -> None:
        if record:
            with self._lock:
                conversation.chat.add(self.brain.fin_agent_id, "agent", html)
        message = {"id": numeric_id(), "body": html, "author": {"type": "fin", "name": FIN_NAME}}
        self._callback(conversation, "new_message", {"message": message})

    def _offer(
        self, conversation: ChannelConversation, prompt: str, options: list[dict[str, str]]
    ) -> None:
        with self._lock:
            conversation.options = [dict(o) for o in options]
        message = {"id": numeric_id(), "body": prompt}
        self._callback(
            conversation, "quick_replies", {"message": message, "options": list(options)}
        )

    def _hand_over(self, conversation: ChannelConversation, reason: str) -> None:
        with self._lock:
            conversation.state = "handed_over"
            conversation.options = []
        self._callback(conversation, "handover", {"reason": reason})
        self._end(conversation)

    def _resolve(self, conversation: ChannelConversation) -> None:
        with self._lock:
            conversation.state = "resolved"
            conversation.options = []
            attributes = {**conversation.chat.attributes, "fin_resolution": "resolved"}
            conversation.chat.attributes = attributes
        self._callback(conversation, "resolution", {"state": "resolved"})
        self._callback(conversation, "resolution", {"state": "feedback_requested"})
        self._end(conversation)

    def _end(self, conversation: ChannelConversation) -> None:
        with self._lock:
            conversation.ended = True
        self._callback(conversation, "end", {})

    def _callback(
        self, conversation: ChannelConversation, event_type: str, data: dict[str, Any]
    ) -> None:
        payload = {
            "event_id": uuid.uuid4().hex,
            "event_type": event_type,
            "external_conversation_id": conversation.external_conversation_id,
            "conversation_id": conversation.conversation_id,
            "created_at": iso_ms(),
            "data": data,
        }
        delivery = Delivery(event_type, payload)
        with self._lock:
            conversation.sent.append(delivery)
        self.deliverer.send(conversation.external_conversation_id, delivery)

    def _turn_failed(self, conversation_id: str, exc: Exception) -> None:
        self.deliverer.log_error(conversation_id, "custom-channel:turn", exc)


def callback_headers(token: str | None) -> Callable[[bytes], dict[str, str]]:
    def headers(_raw: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    return headers


def custom_channel_router(
    channel: CustomChannel, gate: IntercomGate, admin_ok: Callable[[Request], bool]
) -> APIRouter:
    router = APIRouter()
    prefix = "/custom_channel_events"

    @router.post(f"{prefix}/notify_new_conversation")
    async def new_conversation(request: Request) -> JSONResponse:
        return await gate.handle(request, channel.new_conversation)

    @router.post(f"{prefix}/notify_new_message")
    async def new_message(request: Request) -> JSONResponse:
        return await gate.handle(request, channel.new_message)

    @router.post(f"{prefix}/notify_quick_reply_selected")
    async def quick_reply_selected(request: Request) -> JSONResponse:
        return await gate.handle(request, channel.quick_reply_selected)

    @router.post(f"{prefix}/notify_attribute_collected")
    async def attribute_collected(request: Request) -> JSONResponse:
        return await gate.handle(request, channel.attribute_collected)

    def unauthorised() -> JSONResponse:
        return JSONResponse({"error": "A valid bearer token is required."}, status_code=401)

    @router.get("/emulator/custom-channel/{external_conversation_id}")
    def record(request: Request, external_conversation_id: str) -> JSONResponse:
        if not admin_ok(request):
            return unauthorised()
        found = channel.record(external_conversation_id)
        if found is None:
            return JSONResponse(
                {"error": "The Custom Channel has no such conversation."}, status_code=404
            )
        return JSONResponse(found)

    @router.post("/emulator/custom-channel/{external_conversation_id}/attribute-request")
    async def attribute_request(request: Request, external_conversation_id: str) -> JSONResponse:
        """Fin's data collector asks the user for an attribute."""
        if not admin_ok(request):
            return unauthorised()
        try:
            body = load_json(await request.body())
            if not isinstance(body, dict):
                raise ApiError(400, "bad_request", "The request body must be a JSON object")
            given = object_field(body, "attribute")
            attribute = {
                "id": text_field(given, "id", "attribute.id"),
                "name": optional_text(given, "name", "attribute.name"),
                "type": optional_text(given, "type", "attribute.type") or "string",
            }
            attribute["name"] = attribute["name"] or attribute["id"]
            prompt = optional_text(body, "prompt") or f"What is your {attribute['name']}?"
        except ApiError as exc:
            return JSONResponse(
                error_body(uuid.uuid4().hex, exc.code, exc.message, exc.field),
                status_code=exc.status,
            )
        except Problem:
            return JSONResponse({"error": "The body must be JSON."}, status_code=400)
        if not channel.request_attribute(external_conversation_id, attribute, prompt):
            return JSONResponse(
                {"error": "The Custom Channel has no such conversation."}, status_code=404
            )
        return JSONResponse({"requested": attribute, "prompt": prompt}, status_code=202)

    return router
