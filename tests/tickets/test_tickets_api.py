"""Tickets through the agent API, against a live server on SQLite and on PostgreSQL: ticket types
(administrators only), converting a conversation in Intercom's shapes and with its errors, state
changes, and Fin hearing of each through the conversation's ``ticket`` attribute."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.fin import World
from support.server import LiveServer

from findesk.agents.service import create_agent
from findesk.auth.service import create_agent_token
from findesk.conversations.models import ConversationEvent
from findesk.notifier.models import OutboxEvent


def _client(server: LiveServer, name: str, role: str = "agent") -> httpx.Client:
    email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
    with server.db.transaction() as session:
        agent = create_agent(session, email=email, name=name, role=role)
        token = create_agent_token(session, agent)
    return httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "Ada Admin", role="admin") as client:
        yield client


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with _client(server, "Alice Agent") as client:
        yield client


@pytest.fixture(scope="module")
def fin_side(server: LiveServer) -> World:
    return server.fin_world()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def intercom_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Intercom's ``error.list``, with one error of this code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error.list" and body["request_id"]
    (error,) = body["errors"]
    assert error["code"] == code
    assert error["message"]
    return dict(error)


def conversation(fin_side: World) -> str:
    user_id = fin_side.user(name="Jane Doe", email="jane@example.com")["id"]
    return str(fin_side.open(user_id)["conversation"]["id"])


REFUND = {
    "name": "Refund",
    "description": "Money back",
    "icon": "💸",
    "category": "Customer",
    "ticket_type_attributes": [
        {
            "name": "priority",
            "data_type": "list",
            "required_to_create": True,
            "list_items": [{"label": "Low"}, {"label": "High"}],
        },
        {"name": "amount", "data_type": "number"},
        {"name": "paid", "data_type": "boolean", "visible_to_contacts": False},
        {"name": "ordered_on", "data_type": "date"},
    ],
}


@pytest.fixture(scope="module")
def refund(admin: httpx.Client) -> dict[str, Any]:
    body = {**REFUND, "name": f"Refund {uuid.uuid4().hex[:6]}"}
    return dict(ok(admin.post("/ticket_types", json=body)))


def attribute(ticket_type: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in ticket_type["ticket_type_attributes"]["data"] if a["name"] == name)


def item_id(ticket_type: dict[str, Any], attribute_name: str, label: str) -> str:
    options = attribute(ticket_type, attribute_name)["input_options"]["list_options"]
    return str(next(o["id"] for o in options if o["label"] == label))


def outbox_reasons(server: LiveServer, conversation_id: str) -> Counter[str]:
    with server.db.read_session() as session:
        return Counter(
            session.scalars(
                select(OutboxEvent.reason).where(OutboxEvent.conversation_id == conversation_id)
            ).all()
        )


def ticket_history(server: LiveServer, conversation_id: str) -> list[tuple[Any, Any, str]]:
    with server.db.read_session() as session:
        return [
            (e.from_value, e.to_value, e.detail["action"])
            for e in session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.conversation_id == conversation_id)
                .where(ConversationEvent.kind == "ticket")
                .order_by(ConversationEvent.id)
            )
        ]


# --- ticket types -----------------------------------------------------------------------------


def test_a_ticket_type_has_the_two_defaults_and_typed_attributes_with_stable_item_ids(
    admin: httpx.Client, alice: httpx.Client, refund: dict[str, Any]
) -> None:
    assert refund["type"] == "ticket_type"
    assert refund["category"] == "Customer"
    assert isinstance(refund["created_at"], int)
    names = [a["name"] for a in refund["ticket_type_attributes"]["data"]]
    assert names == ["_default_title_", "_default_description_", "priority", "amount", "paid",
                     "ordered_on"]  # fmt: skip
    title = attribute(refund, "_default_title_")
    assert title["default"] and title["required_to_create"] and title["data_type"] == "string"
    assert attribute(refund, "paid")["visible_to_contacts"] is False
    low = item_id(refund, "priority", "Low")
    # Items sent again with their id keep it; one left out is archived, not removed.
    priority = attribute(refund, "priority")
    changed = ok(
        admin.put(
            f"/ticket_types/{refund['id']}/attributes/{priority['id']}",
            json={"list_items": [{"id": low, "label": "Low"}, {"label": "Urgent"}]},
        )
    )
    options = {o["label"]: o for o in changed["input_options"]["list_options"]}
    assert options["Low"]["id"] == low and not options["Low"]["archived"]
    assert options["High"]["archived"] and not options["Urgent"]["archived"]
    # Every agent reads them; only administrators change them.
    assert refund["id"] in [t["id"] for t in ok(alice.get("/ticket_types"))["data"]]
    assert ok(alice.get(f"/ticket_types/{refund['id']}"))["name"] == refund["name"]
    for response in (
        alice.post("/ticket_types", json={"name": "Nope"}),
        alice.put(f"/ticket_types/{refund['id']}", json={"name": "Nope"}),
        alice.post(
            f"/ticket_types/{refund['id']}/attributes", json={"name": "x", "data_type": "string"}
        ),
    ):
        assert response.status_code == 403, response.text


def test_ticket_type_mistakes_are_refused(admin: httpx.Client, refund: dict[str, Any]) -> None:
    error = intercom_error(
        admin.post("/ticket_types", json={"name": refund["name"]}), 400, "parameter_invalid"
    )
    assert error["field"] == "name"
    intercom_error(
        admin.post(
            f"/ticket_types/{refund['id']}/attributes", json={"name": "kind", "data_type": "list"}
        ),
        400,
        "parameter_invalid",
    )
    intercom_error(
        admin.post(
            f"/ticket_types/{refund['id']}/attributes",
            json={"name": "amount", "data_type": "string"},
        ),
        400,
        "parameter_invalid",
    )
    intercom_error(admin.get("/ticket_types/tty_nope"), 404, "not_found")
    added = ok(
        admin.post(
            f"/ticket_types/{refund['id']}/attributes",
            json={"name": f"note {uuid.uuid4().hex[:4]}", "data_type": "string"},
        )
    )
    assert added["type"] == "ticket_type_attribute" and added["ticket_type_id"] == refund["id"]


def test_ticket_states_have_internal_and_external_labels(alice: httpx.Client) -> None:
    states = ok(alice.get("/ticket_states"))["data"]
    assert [s["category"] for s in states] == [
        "submitted",
        "in_progress",
        "waiting_on_customer",
        "resolved",
    ]
    waiting = states[2]
    assert waiting["internal_label"] == "Waiting on customer"
    assert waiting["external_label"] == "Awaiting your reply"


# --- converting -------------------------------------------------------------------------------


def test_converting_a_conversation_answers_an_intercom_ticket_and_tells_fin(
    server: LiveServer, alice: httpx.Client, fin_side: World, refund: dict[str, Any]
) -> None:
    cid = conversation(fin_side)
    before = outbox_reasons(server, cid)
    high = item_id(refund, "priority", "Low")
    ticket = ok(
        alice.post(
            f"/conversations/{cid}/convert",
            json={
                "ticket_type_id": refund["id"],
                "attributes": {
                    "_default_title_": "Found a bug",
                    "_default_description_": "The button is not working",
                    "priority": high,
                    "amount": 12.5,
                    "paid": False,
                    "ordered_on": "2026-11-30",
                },
            },
        )
    )
    assert ticket["type"] == "ticket" and ticket["id"].startswith("tkt_")
    assert ticket["ticket_id"].isdigit()
    assert ticket["category"] == "Customer" and ticket["is_shared"] and ticket["open"]
    assert ticket["ticket_attributes"]["_default_title_"] == "Found a bug"
    assert ticket["ticket_attributes"]["priority"] == high
    assert ticket["ticket_state"] == {
        "type": "ticket_state",
        "id": "submitted",
        "category": "submitted",
        "internal_label": "Submitted",
        "external_label": "Submitted",
    }
    assert ticket["ticket_type"]["id"] == refund["id"]
    assert ticket["contacts"]["type"] == "contact.list"
    assert len(ticket["contacts"]["contacts"]) == 1
    assert ticket["linked_objects"]["data"] == [
        {"type": "conversation", "id": cid, "category": None}
    ]
    assert ticket["conversation_id"] == cid
    assert ok(alice.get(f"/tickets/{ticket['id']}")) == ticket
    # Fin hears of it: an event for the conversation, the attribute in get_conversation.
    assert outbox_reasons(server, cid) - before == Counter({"attributes": 1})
    seen = fin_side.api.get_conversation(cid).data["attributes"]["ticket"]
    assert seen == {
        "id": ticket["id"],
        "ticket_id": ticket["ticket_id"],
        "type": refund["name"],
        "state": "Submitted",
        "open": True,
    }
    assert ticket_history(server, cid) == [(None, "Submitted", "converted")]
    # The thread stays the conversation's.
    assert ok(alice.get(f"/conversations/{cid}/messages"))["items"]
    # At most one ticket a conversation.
    intercom_error(
        alice.post(
            f"/conversations/{cid}/convert",
            json={"ticket_type_id": refund["id"], "attributes": ticket["ticket_attributes"]},
        ),
        409,
        "conflict",
    )


def test_a_state_change_is_in_the_history_and_reaches_fin_with_the_external_label(
    server: LiveServer, alice: httpx.Client, fin_side: World, refund: dict[str, Any]
) -> None:
    cid = conversation(fin_side)
    ticket = ok(
        alice.post(
            f"/conversations/{cid}/convert",
            json={
                "ticket_type_id": refund["id"],
                "attributes": {
                    "_default_title_": "Refund please",
                    "priority": item_id(refund, "priority", "Low"),
                },
            },
        )
    )
    before = outbox_reasons(server, cid)
    moved = ok(
        alice.put(f"/tickets/{ticket['id']}", json={"ticket_state_id": "waiting_on_customer"})
    )
    assert moved["ticket_state"]["external_label"] == "Awaiting your reply"
    assert moved["open"] is True
    assert outbox_reasons(server, cid) - before == Counter({"attributes": 1})
    seen = fin_side.api.get_conversation(cid).data["attributes"]["ticket"]
    assert seen["state"] == "Awaiting your reply"
    resolved = ok(
        alice.put(
            f"/tickets/{ticket['id']}",
            json={"ticket_state_id": "resolved", "ticket_attributes": {"amount": 3}},
        )
    )
    assert resolved["open"] is False and resolved["ticket_attributes"]["amount"] == 3
    assert fin_side.api.get_conversation(cid).data["attributes"]["ticket"]["open"] is False
    assert ticket_history(server, cid) == [
        (None, "Submitted", "converted"),
        ("Submitted", "Waiting on customer", "state"),
        ("Waiting on customer", "Resolved", "state"),
    ]
    # The agent API's history says it too, with the ticket's id and number.
    rows = [
        e for e in ok(alice.get(f"/conversations/{cid}/history"))["items"] if e["kind"] == "ticket"
    ]
    assert [(e["to_value"], e["detail"]["ticket_id"]) for e in rows] == [
        ("Submitted", ticket["id"]),
        ("Waiting on customer", ticket["id"]),
        ("Resolved", ticket["id"]),
    ]
    # The same state again changes nothing and tells Fin nothing.
    before = outbox_reasons(server, cid)
    ok(alice.put(f"/tickets/{ticket['id']}", json={"ticket_state_id": "resolved"}))
    assert outbox_reasons(server, cid) == before
    intercom_error(
        alice.put(f"/tickets/{ticket['id']}", json={"ticket_state_id": "nope"}),
        400,
        "parameter_invalid",
    )
    intercom_error(
        alice.put(
            f"/tickets/{ticket['id']}", json={"ticket_attributes": {"_default_title_": None}}
        ),
        400,
        "parameter_not_found",
    )
    intercom_error(alice.get("/tickets/tkt_nope"), 404, "not_found")
    # Listed by state and by type.
    listed = ok(
        alice.get("/tickets", params={"state_id": "resolved", "ticket_type_id": refund["id"]})
    )
    assert listed["type"] == "ticket.list"
    assert ticket["id"] in [t["id"] for t in listed["tickets"]]
    assert all(t["ticket_state"]["id"] == "resolved" for t in listed["tickets"])
    assert listed["pages"]["page"] == 1 and listed["total_count"] >= 1
    submitted = ok(alice.get("/tickets", params={"state_id": "submitted"}))["tickets"]
    assert ticket["id"] not in [t["id"] for t in submitted]


@pytest.fixture(scope="module")
def tracker(admin: httpx.Client) -> dict[str, Any]:
    body = {"name": f"Bug tracker {uuid.uuid4().hex[:6]}", "category": "Tracker"}
    return dict(ok(admin.post("/ticket_types", json=body)))


MUST = "Ticket attribute {!r} must be a {}."


@pytest.mark.parametrize(
    ("case", "status", "code", "message"),
    [
        ("tracker type", 400, "parameter_invalid", "Ticket type is not a customer ticket type"),
        ("unknown type", 400, "parameter_invalid", "Ticket type not found"),
        ("no title", 400, "parameter_not_found", "Ticket attribute '_default_title_' is required."),
        ("no priority", 400, "parameter_not_found", "Ticket attribute 'priority' is required."),
        ("unknown attribute", 400, "parameter_invalid", None),
        ("title not a string", 400, "parameter_invalid", MUST.format("_default_title_", "string")),
        ("amount not a number", 400, "parameter_invalid", MUST.format("amount", "number")),
        ("paid not a boolean", 400, "parameter_invalid", MUST.format("paid", "boolean")),
        ("bad date", 400, "parameter_invalid", None),
        ("priority by label", 400, "parameter_invalid", None),
        ("unknown state", 400, "parameter_invalid", "Ticket state not found"),
        ("unknown conversation", 404, "not_found", "Conversation not found"),
    ],
)  # fmt: skip
def test_converting_refuses_what_intercom_refuses(
    server: LiveServer,
    alice: httpx.Client,
    fin_side: World,
    refund: dict[str, Any],
    tracker: dict[str, Any],
    case: str,
    status: int,
    code: str,
    message: str | None,
) -> None:
    cid = conversation(fin_side)
    attributes: dict[str, Any] = {
        "_default_title_": "Found a bug",
        "priority": item_id(refund, "priority", "Low"),
    }
    body: dict[str, Any] = {"ticket_type_id": refund["id"], "attributes": attributes}
    path = f"/conversations/{cid}/convert"
    if case == "tracker type":
        body["ticket_type_id"] = tracker["id"]
    elif case == "unknown type":
        body["ticket_type_id"] = "tty_nope"
    elif case == "no title":
        del attributes["_default_title_"]
    elif case == "no priority":
        del attributes["priority"]
    elif case == "unknown attribute":
        attributes["colour"] = "red"
    elif case == "title not a string":
        attributes["_default_title_"] = 7
    elif case == "amount not a number":
        attributes["amount"] = "12"
    elif case == "paid not a boolean":
        attributes["paid"] = "yes"
    elif case == "bad date":
        attributes["ordered_on"] = "yesterday"
    elif case == "priority by label":
        attributes["priority"] = "Low"
    elif case == "unknown state":
        body["ticket_state_id"] = "nope"
    elif case == "unknown conversation":
        path = "/conversations/conv_nope/convert"
    before = outbox_reasons(server, cid)
    error = intercom_error(alice.post(path, json=body), status, code)
    if message is not None:
        assert error["message"] == message
    # Nothing changed: no ticket, no history, nothing for Fin.
    assert ticket_history(server, cid) == []
    assert outbox_reasons(server, cid) == before
    assert "ticket" not in fin_side.api.get_conversation(cid).data["attributes"]


def test_a_malformed_body_is_a_422(alice: httpx.Client, fin_side: World) -> None:
    cid = conversation(fin_side)
    response = alice.post(f"/conversations/{cid}/convert", json={"attributes": {}})
    assert response.status_code == 422, response.text


# --- tickets without a conversation -----------------------------------------------------------


def test_a_ticket_without_a_conversation(
    admin: httpx.Client,
    alice: httpx.Client,
    fin_side: World,
    refund: dict[str, Any],
    tracker: dict[str, Any],
) -> None:
    back_office = ok(
        alice.post(
            "/tickets",
            json={"ticket_type_id": tracker["id"], "ticket_attributes": {"_default_title_": "Bug"}},
        )
    )
    assert back_office["category"] == "Tracker" and back_office["is_shared"] is False
    assert back_office["conversation_id"] is None
    assert back_office["linked_objects"] == {
        "type": "list",
        "total_count": 0,
        "has_more": False,
        "data": [],
    }
    assert back_office["contacts"]["contacts"] == []
    user_id = fin_side.user(name="Ola")["id"]
    customer = ok(
        alice.post(
            "/tickets",
            json={
                "ticket_type_id": refund["id"],
                "contacts": [{"id": user_id}],
                "ticket_attributes": {
                    "_default_title_": "Refund",
                    "priority": item_id(refund, "priority", "Low"),
                },
                "ticket_state_id": "in_progress",
            },
        )
    )
    assert customer["contacts"]["contacts"][0]["id"] == user_id
    assert customer["ticket_state"]["id"] == "in_progress"
    assert int(customer["ticket_id"]) > int(back_office["ticket_id"])
    # A state change of a ticket without a conversation: nothing to tell Fin, still saved.
    moved = ok(alice.put(f"/tickets/{customer['id']}", json={"ticket_state_id": "resolved"}))
    assert moved["open"] is False
    intercom_error(
        alice.post(
            "/tickets",
            json={"ticket_type_id": refund["id"], "ticket_attributes": {"_default_title_": "x"}},
        ),
        400,
        "parameter_not_found",
    )
    intercom_error(
        alice.post(
            "/tickets",
            json={
                "ticket_type_id": tracker["id"],
                "contacts": [{"id": "usr_nope"}],
                "ticket_attributes": {"_default_title_": "x"},
            },
        ),
        404,
        "not_found",
    )
    intercom_error(
        alice.post("/tickets", json={"ticket_type_id": tracker["id"]}), 400, "parameter_not_found"
    )


def test_tickets_made_at_once_get_numbers_of_their_own(
    server: LiveServer, alice: httpx.Client, fin_side: World, refund: dict[str, Any]
) -> None:
    """Numbers are the highest plus one: concurrent conversions take turns (an advisory lock on
    PostgreSQL, the one writer on SQLite), never the same number or a unique-key error."""
    conversations = [conversation(fin_side) for _ in range(6)]
    body = {
        "ticket_type_id": refund["id"],
        "attributes": {"_default_title_": "Rush", "priority": item_id(refund, "priority", "Low")},
    }

    def convert(cid: str) -> httpx.Response:
        return alice.post(f"/conversations/{cid}/convert", json=body)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(convert, conversations))
    numbers = [int(ok(response)["ticket_id"]) for response in responses]
    assert len(set(numbers)) == len(numbers)


def test_a_tracker_ticket_moves_the_customer_tickets_linked_to_it(
    server: LiveServer,
    alice: httpx.Client,
    fin_side: World,
    refund: dict[str, Any],
    tracker: dict[str, Any],
) -> None:
    bug = ok(
        alice.post(
            "/tickets",
            json={"ticket_type_id": tracker["id"], "ticket_attributes": {"_default_title_": "Bug"}},
        )
    )
    body = {
        "ticket_type_id": refund["id"],
        "attributes": {"_default_title_": "Broken", "priority": item_id(refund, "priority", "Low")},
    }
    cids = [conversation(fin_side) for _ in range(2)]
    customers = [ok(alice.post(f"/conversations/{cid}/convert", json=body)) for cid in cids]
    for customer in customers:
        linked = ok(alice.put(f"/tickets/{customer['id']}", json={"tracker_ticket_id": bug["id"]}))
        assert {"type": "ticket", "id": bug["id"], "category": "Tracker"} in linked[
            "linked_objects"
        ]["data"]
    shown = ok(alice.get(f"/tickets/{bug['id']}"))["linked_objects"]
    assert [o["id"] for o in shown["data"]] == [c["id"] for c in customers]
    before = {cid: outbox_reasons(server, cid) for cid in cids}

    ok(alice.put(f"/tickets/{bug['id']}", json={"ticket_state_id": "resolved"}))
    for cid, customer in zip(cids, customers, strict=True):
        assert ok(alice.get(f"/tickets/{customer['id']}"))["ticket_state"]["id"] == "resolved"
        assert fin_side.api.get_conversation(cid).data["attributes"]["ticket"]["open"] is False
        assert outbox_reasons(server, cid) - before[cid] == Counter({"attributes": 1})
        assert ticket_history(server, cid)[-1] == ("Submitted", "Resolved", "state")

    # Unlinked, a customer ticket no longer follows; only customer tickets link, to trackers.
    ok(alice.put(f"/tickets/{customers[0]['id']}", json={"tracker_ticket_id": None}))
    ok(alice.put(f"/tickets/{bug['id']}", json={"ticket_state_id": "in_progress"}))
    states = [ok(alice.get(f"/tickets/{c['id']}"))["ticket_state"]["id"] for c in customers]
    assert states == ["resolved", "in_progress"]
    intercom_error(
        alice.put(f"/tickets/{customers[0]['id']}", json={"tracker_ticket_id": customers[1]["id"]}),
        400,
        "parameter_invalid",
    )
    intercom_error(
        alice.put(f"/tickets/{bug['id']}", json={"tracker_ticket_id": bug["id"]}),
        400,
        "parameter_invalid",
    )
