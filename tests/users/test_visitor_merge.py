"""Visitors and merging against a live server, on SQLite and on PostgreSQL: the agent API's
``POST /visitors/convert`` (Intercom's shapes), what a merge moves, and Fin's API afterwards,
called with the ids Fin held for the visitor (in both variants of the contract)."""

from __future__ import annotations

import string
import time
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from support.fin import World, unique
from support.server import LiveServer

from findesk.conversations.models import ConversationEvent
from findesk.notifier.models import OutboxEvent
from findesk.objects.models import ObjectInstance, ObjectType, ObjectUserLink
from findesk.tickets import repository as ticket_repository
from findesk.tickets.models import Ticket, TicketType


def email() -> str:
    return f"u-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture(scope="module", params=["rest", "posts-only"])
def fin_world(request: pytest.FixtureRequest, server: LiveServer) -> World:
    return server.fin_world(request.param)


def convert(client: httpx.Client, visitor: dict[str, Any], user: dict[str, Any]) -> httpx.Response:
    return client.post("/visitors/convert", json={"type": "user", "visitor": visitor, "user": user})


def converted(client: httpx.Client, visitor: dict[str, Any], user: dict[str, Any]) -> Any:
    response = convert(client, visitor, user)
    assert response.status_code == 200, response.text
    return response.json()


def outbox_count(server: LiveServer, conversation_id: str) -> int:
    with server.db.read_session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.conversation_id == conversation_id)
            )
            or 0
        )


def intercom_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["type"] == "error.list"
    assert body["request_id"]
    assert [e["code"] for e in body["errors"]] == [code], body
    assert all(e["message"] for e in body["errors"])
    return dict(body)


def test_a_merge_moves_conversations_and_messages_and_never_overwrites(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    visitor = fin_world.user(
        name="Anon", attributes={"plan": "free", "browser": "Firefox"}, photo_url=None
    )
    user = fin_world.user(email=email(), name=None, attributes={"plan": "pro"})
    assert visitor["email"] is None
    mine, _ = fin_world.conversation(user)
    first, _ = fin_world.conversation(visitor, body="<p>Anonymous question</p>")
    said = fin_world.user_says(first["id"], visitor["id"], "<p>Still there?</p>")
    closed, _ = fin_world.conversation(visitor)
    fin_world.update(closed["id"], status="resolved")
    listed = agent_client.get("/conversations", params={"user_id": visitor["id"]}).json()
    assert {c["user"]["role"] for c in listed["items"]} == {"visitor"}

    contact = converted(agent_client, {"id": visitor["id"]}, {"email": user["email"]})

    assert contact["type"] == "contact"
    assert contact["id"] == user["id"]
    assert contact["role"] == "user"
    assert contact["name"] == "Anon"  # the user had none
    assert contact["custom_attributes"] == {"plan": "pro", "browser": "Firefox"}
    assert visitor["id"] in contact["merged_ids"]
    theirs = agent_client.get("/conversations", params={"user_id": user["id"]}).json()["items"]
    assert {c["id"] for c in theirs} == {mine["id"], first["id"], closed["id"]}
    assert {c["user"]["role"] for c in theirs} == {"user"}
    messages = agent_client.get(f"/conversations/{first['id']}/messages").json()["items"]
    assert {m["author"]["id"] for m in messages if m["author"]["user_type"] == "end_user"} == {
        user["id"]
    }
    assert said["id"] in {m["id"] for m in messages}
    history = agent_client.get(f"/conversations/{first['id']}/history").json()["items"]
    merge = [e for e in history if e["kind"] == "merge"]
    assert [(e["from_value"], e["to_value"]) for e in merge] == [(visitor["id"], user["id"])]
    assert merge[0]["actor_agent"]["id"] == agent_client.agent_id  # type: ignore[attr-defined]
    # A script holding the visitor's id lists the user's conversations.
    old_id = agent_client.get("/conversations", params={"user_id": visitor["id"]}).json()
    assert {c["id"] for c in old_id["items"]} == {c["id"] for c in theirs}
    # Search finds the moved conversation by the user's email now (its search head followed).
    local = user["email"].split("@")[0].split("-")[1]
    found = agent_client.get("/search", params={"q": local}).json()["items"]
    assert first["id"] in {hit["conversation"]["id"] for hit in found}


def test_fin_keeps_working_with_the_ids_it_held_for_the_visitor(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    visitor_object_id = unique("u")
    made = fin_world.api.create_user(object_id=visitor_object_id, name="Visitor")
    assert made.status == 201
    visitor = made.data
    user = fin_world.user(email=email(), name="Known")
    conversation, _ = fin_world.conversation(visitor)
    converted(agent_client, {"user_id": visitor_object_id}, {"id": user["id"]})

    got = fin_world.api.get_user(visitor["id"])
    assert got.status == 200 and got.data["id"] == user["id"], got.error
    assert got.data["email"] == user["email"]
    again = fin_world.api.create_user(object_id=visitor_object_id, name="Visitor")
    assert again.status == 200 and again.data["id"] == user["id"]
    updated = fin_world.api.update_user(visitor["id"], attributes={"city": "Lyon"})
    assert updated.status == 200 and updated.data["id"] == user["id"]
    assert updated.data["attributes"]["city"] == "Lyon"
    # The sync run that began before the merge: the conversation, and a message by the old id.
    read = fin_world.api.get_conversation(conversation["id"])
    assert read.status == 200 and read.data["user"]["id"] == user["id"]
    written = fin_world.user_says(conversation["id"], visitor["id"], "<p>Me again</p>")
    assert written["author"]["id"] == user["id"]
    # A new conversation for the old id lands on the user.
    opened = fin_world.open(visitor["id"])
    assert opened["conversation"]["user"]["id"] == user["id"]
    assert opened["initial_message"]["author"]["id"] == user["id"]
    # Another end user's old id is still refused as an author here.
    other = fin_world.user()
    refused = fin_world.api.create_message(
        conversation_id=conversation["id"],
        body="<p>Not mine</p>",
        author={"id": other["id"], "user_type": "end_user"},
        object_id=unique("m"),
    )
    assert refused.status == 422


def test_fin_is_told_about_every_open_conversation_that_moved(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    visitor = fin_world.user(attributes={"browser": "Safari"})
    user = fin_world.user(email=email())
    waiting, _ = fin_world.conversation(visitor)
    fin_world.hand_over(waiting["id"])
    handled, _ = fin_world.conversation(visitor)
    resolved, _ = fin_world.conversation(visitor)
    fin_world.update(resolved["id"], status="resolved")
    own, _ = fin_world.conversation(user)
    before = {c["id"]: outbox_count(server, c["id"]) for c in (waiting, handled, resolved, own)}

    converted(agent_client, {"id": visitor["id"]}, {"id": user["id"]})

    after = {c: outbox_count(server, c) for c in before}
    assert after[waiting["id"]] == before[waiting["id"]] + 1
    assert after[handled["id"]] == before[handled["id"]] + 1
    assert after[resolved["id"]] == before[resolved["id"]]  # not open: nothing for Fin
    # The user's own fields were filled from the visitor's: Fin hears of its own open one too.
    assert after[own["id"]] == before[own["id"]] + 1
    with server.db.read_session() as session:
        reasons = session.scalars(
            select(OutboxEvent.reason).where(OutboxEvent.conversation_id == waiting["id"])
        ).all()
        assert "user" in reasons
        kinds = session.scalars(
            select(ConversationEvent.kind).where(
                ConversationEvent.conversation_id == resolved["id"]
            )
        ).all()
        assert "merge" in kinds


def test_without_such_a_user_the_visitor_becomes_the_user(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    old_object_id = unique("u")
    visitor = fin_world.api.create_user(object_id=old_object_id).data
    conversation, _ = fin_world.conversation(visitor)
    before = outbox_count(server, conversation["id"])
    address, external = email(), unique("ext")

    contact = converted(
        agent_client, {"id": visitor["id"]}, {"user_id": external, "email": address}
    )

    assert (contact["id"], contact["email"], contact["role"]) == (visitor["id"], address, "user")
    assert contact["external_id"] == external
    assert contact["merged_ids"] == [f"object_id:{old_object_id}"]
    assert outbox_count(server, conversation["id"]) == before + 1
    assert fin_world.api.get_user(visitor["id"]).data["email"] == address
    # Fin's create_user with the object_id it made the visitor with still finds it.
    again = fin_world.api.create_user(object_id=old_object_id)
    assert again.status == 200 and again.data["id"] == visitor["id"]
    # Repeating the conversion: the same user, nothing more.
    repeat = converted(agent_client, {"id": visitor["id"]}, {"email": address})
    assert repeat["id"] == visitor["id"]


def test_a_repeated_merge_answers_the_same_user_and_aliases_never_chain(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    visitor = fin_world.user()
    first_user = fin_world.user(email=email())
    converted(agent_client, {"id": visitor["id"]}, {"id": first_user["id"]})
    repeat = converted(agent_client, {"id": visitor["id"]}, {"id": first_user["id"]})
    assert repeat["id"] == first_user["id"]
    # The survivor is merged in turn (from the inbox, say): the visitor's old id follows it.
    final = fin_world.user(email=email())
    from findesk.kit.actor import SYSTEM
    from findesk.users import repository
    from findesk.users.service import merge_into

    with server.db.transaction() as session:
        source = repository.get(session, first_user["id"])
        target = repository.get(session, final["id"])
        assert source is not None and target is not None
        merge_into(session, source, target, SYSTEM)
    assert fin_world.api.get_user(visitor["id"]).data["id"] == final["id"]
    assert fin_world.api.get_user(first_user["id"]).data["id"] == final["id"]


def test_convert_refusals_are_in_intercoms_shape(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    visitor = fin_world.user()
    user = fin_world.user(email=email())
    intercom_error(
        convert(agent_client, {"id": "usr_nobody"}, {"id": user["id"]}), 404, "not_found"
    )
    intercom_error(
        convert(agent_client, {"id": visitor["id"]}, {"id": "usr_nobody"}), 404, "not_found"
    )
    # Not a visitor: it has an email.
    body = intercom_error(
        convert(agent_client, {"id": user["id"]}, {"id": visitor["id"]}), 422, "parameter_invalid"
    )
    assert body["errors"][0]["field"] == "visitor"
    # No such user, and no email to make the visitor that user.
    body = intercom_error(
        convert(agent_client, {"id": visitor["id"]}, {"user_id": unique("ext")}),
        422,
        "parameter_invalid",
    )
    assert body["errors"][0]["field"] == "user.email"
    # The visitor named as the user too, without an email: nothing to make it.
    body = intercom_error(
        convert(agent_client, {"id": visitor["id"]}, {"id": visitor["id"]}),
        422,
        "parameter_invalid",
    )
    assert body["errors"][0]["field"] == "user.email"
    # Into another visitor: a merge needs a user with an email.
    other_visitor = fin_world.user()
    body = intercom_error(
        convert(agent_client, {"id": visitor["id"]}, {"id": other_visitor["id"]}),
        422,
        "parameter_invalid",
    )
    assert body["errors"][0]["field"] == "user"
    # Two end users with the email: which one is ambiguous.
    shared = email()
    fin_world.user(email=shared)
    fin_world.user(email=shared)
    intercom_error(convert(agent_client, {"id": visitor["id"]}, {"email": shared}), 409, "conflict")
    # Shapes the schema refuses: no leads, an empty reference, a missing field.
    response = agent_client.post(
        "/visitors/convert",
        json={"type": "lead", "visitor": {"id": visitor["id"]}, "user": {"id": user["id"]}},
    )
    assert intercom_error(response, 422, "parameter_invalid")["errors"][0]["field"] == "type"
    response = agent_client.post(
        "/visitors/convert", json={"type": "user", "visitor": {}, "user": {"id": user["id"]}}
    )
    intercom_error(response, 422, "parameter_invalid")
    response = agent_client.post("/visitors/convert", json={"type": "user", "user": {"id": "x"}})
    assert intercom_error(response, 422, "parameter_not_found")["errors"][0]["field"] == "visitor"
    response = agent_client.post(
        "/visitors/convert", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    intercom_error(response, 400, "bad_request")
    unauthenticated = httpx.post(
        f"{server.base_url}/api/v1/visitors/convert",
        json={"type": "user", "visitor": {"id": visitor["id"]}, "user": {"id": user["id"]}},
    )
    intercom_error(unauthenticated, 401, "unauthorized")
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    # Nothing changed.
    assert fin_world.api.get_user(visitor["id"]).data["id"] == visitor["id"]


def test_a_conversation_fin_opens_while_a_merge_runs_lands_on_the_user(
    server: LiveServer, fin_world: World
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from findesk.kit.actor import SYSTEM
    from findesk.users import repository
    from findesk.users.service import merge_into

    visitor = fin_world.user()
    user = fin_world.user(email=email())
    with ThreadPoolExecutor(1) as pool:
        with server.db.transaction() as session:
            source = repository.get(session, visitor["id"])
            target = repository.get(session, user["id"])
            assert source is not None and target is not None
            merge_into(session, source, target, SYSTEM)
            # Fin opens one for the visitor while the merge is not committed yet: it waits.
            opening = pool.submit(fin_world.open, visitor["id"])
            time.sleep(0.5)
            assert not opening.done()
        opened = opening.result(timeout=30)
    assert opened["conversation"]["user"]["id"] == user["id"]


ATTRIBUTE_VALUES = st.one_of(
    st.integers(-1000, 1000), st.booleans(), st.text(string.ascii_letters, max_size=8)
)
ATTRIBUTES = st.dictionaries(st.sampled_from(["plan", "city", "vip", "seats"]), ATTRIBUTE_VALUES)
NAMES = st.one_of(st.none(), st.sampled_from(["Ada", "Grace"]))


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    visitor_attributes=ATTRIBUTES,
    user_attributes=ATTRIBUTES,
    visitor_name=NAMES,
    user_name=NAMES,
)
def test_a_merge_fills_only_what_the_user_lacks(
    server: LiveServer,
    visitor_attributes: dict[str, Any],
    user_attributes: dict[str, Any],
    visitor_name: str | None,
    user_name: str | None,
) -> None:
    from findesk.kit.actor import SYSTEM
    from findesk.users.service import create_user, merge_into

    with server.db.transaction() as session:
        visitor, _ = create_user(
            session, object_id=unique("u"), name=visitor_name, attributes=visitor_attributes
        )
        user, _ = create_user(
            session, object_id=None, name=user_name, email=email(), attributes=user_attributes
        )
        merged = merge_into(session, visitor, user, SYSTEM)
        assert merged.user is user
        assert user.attributes == {**visitor_attributes, **user_attributes}
        assert all(user.attributes[k] == v for k, v in user_attributes.items())
        assert user.name == (user_name if user_name is not None else visitor_name)
        assert user.role == "user"


def test_a_merge_moves_the_visitors_objects_to_the_user(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    """The orders linked to the visitor are the user's afterwards; one linked to both stays
    linked once."""
    visitor = fin_world.user(name="Anon")
    user = fin_world.user(email=email())
    with server.db.transaction() as session:
        kind = ObjectType(identifier=unique("Order").replace("-", ""), name="Order", attributes=[])
        session.add(kind)
        session.flush()
        orders = [
            ObjectInstance(type_id=kind.id, external_id=name, custom_attributes={})
            for name in ("visitors", "both", "users")
        ]
        session.add_all(orders)
        session.flush()
        links = [(visitor, orders[0]), (visitor, orders[1]), (user, orders[1]), (user, orders[2])]
        for who, order in links:
            session.add(ObjectUserLink(user_id=who["id"], instance_id=order.id))
        identifier = kind.identifier

    converted(agent_client, {"id": visitor["id"]}, {"id": user["id"]})

    listed = agent_client.get(
        f"/custom_object_instances/{identifier}", params={"references_contact_id": user["id"]}
    )
    assert listed.status_code == 200, listed.text
    assert sorted(i["external_id"] for i in listed.json()["data"]) == ["both", "users", "visitors"]


def test_a_merge_moves_the_visitors_tickets_to_the_user(
    server: LiveServer, fin_world: World, agent_client: httpx.Client
) -> None:
    """A visitor's tickets are the user's afterwards: deleting the visitor would otherwise
    leave them with no contact at all."""
    visitor = fin_world.user(name="Anon")
    user = fin_world.user(email=email())
    with server.db.transaction() as session:
        kind = TicketType(name=unique("Refund"), category="Customer", attributes=[])
        session.add(kind)
        session.flush()
        state = ticket_repository.first_state(session)
        tickets = []
        for who in (visitor, visitor, user):
            ticket = Ticket(
                number=ticket_repository.next_number(session),
                ticket_type_id=kind.id,
                state_id=state.id,
                user_id=who["id"],
                attributes={},
            )
            session.add(ticket)
            session.flush()
            tickets.append(ticket.id)

    converted(agent_client, {"id": visitor["id"]}, {"id": user["id"]})

    for ticket_id in tickets:
        response = agent_client.get(f"/tickets/{ticket_id}")
        assert response.status_code == 200, response.text
        assert [c["id"] for c in response.json()["contacts"]["contacts"]] == [user["id"]]
