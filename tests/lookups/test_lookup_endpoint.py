"""The endpoint Fin calls (``GET /api/connectors/{lookup_id}``), over real HTTP, on SQLite and on
PostgreSQL: answers with only the lookup's fields (a redacted one masked), an end user's data only
(another user's order is not found), every refusal (401, 404, 400, 403, 429 with Retry-After), and
every call recorded; the lookup by external id reads by the unique index."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from lookup_support import Caller, admin, define, order, order_type, people
from sqlalchemy import func, insert, select
from support.fin import World
from support.server import LiveServer
from support.sql import statements_sent

from findesk.agents.models import Agent
from findesk.conversations.models import ConversationEvent
from findesk.kit.actor import SYSTEM
from findesk.kit.actor import agent as agent_actor
from findesk.kit.timeutil import utcnow
from findesk.lookups import service as lookups
from findesk.lookups.intercom import mint_token
from findesk.lookups.models import LookupCall
from findesk.notifier.models import OutboxEvent
from findesk.objects.models import ObjectInstance, ObjectType
from findesk.tickets import service as tickets
from findesk.tickets.schemas import TicketTypeCreate
from findesk.users.models import EndUser
from findesk.users.service import merge_into


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return server.fin_world()


@pytest.fixture(scope="module")
def boss(server: LiveServer) -> Agent:
    return admin(server)


ORDER_LOOKUP = {
    "kind": "object_by_external_id",
    "inputs": [{"name": "order_id", "type": "string", "description": "The order number"}],
    "fields": [{"name": "status"}, {"name": "email", "redacted": True}, {"name": "total"}],
}


def calls_of(server: LiveServer, lookup_id: str) -> list[LookupCall]:
    with server.db.read_session() as session:
        statement = select(LookupCall).where(LookupCall.lookup_id == lookup_id)
        return list(session.scalars(statement.order_by(LookupCall.id)).all())


def test_an_order_is_answered_with_its_fields_only_and_a_redacted_one_masked(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, conversation = people(world)
    order(server, identifier, "A-1042", user, status="shipped", email="jane.doe@example.com",
          total="19.90", paid=True, items=3)  # fmt: skip
    lookup_id, token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    call = Caller(http, lookup_id, token)
    with server.db.read_session() as session:
        outbox_before = session.scalar(select(func.count()).select_from(OutboxEvent))

    response = call(order_id="A-1042", user_id=user, conversation_id=conversation)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "found": True,
        "order": {"id": "A-1042", "status": "shipped", "email": "****.com", "total": "19.90"},
    }
    assert "jane.doe" not in response.text and "paid" not in response.text

    [recorded] = calls_of(server, lookup_id)
    assert (recorded.status_code, recorded.outcome, recorded.summary) == (
        200, "found", "order A-1042: shipped"
    )  # fmt: skip
    assert recorded.inputs == {"order_id": "A-1042"}
    assert (recorded.user_id, recorded.conversation_id) == (user, conversation)
    assert recorded.duration_ms >= 0
    with server.db.read_session() as session:
        told = session.scalars(
            select(ConversationEvent).where(
                ConversationEvent.conversation_id == conversation,
                ConversationEvent.kind == "lookup",
            )
        ).all()
        # Fin is not told of its own lookup: nothing it reads changed.
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == outbox_before
    assert [(e.actor, e.detail["summary"]) for e in told] == [("fin", "order A-1042: shipped")]
    # The agent API's history tells it too.
    agents = server.agent_http(f"hist-{conversation[-8:]}@example.com")
    page = agents.get(f"/conversations/{conversation}/history")
    agents.close()
    assert page.status_code == 200, page.text
    assert [(e["kind"], e["detail"]["summary"]) for e in page.json()["items"]
            if e["kind"] == "lookup"] == [("lookup", "order A-1042: shipped")]  # fmt: skip


def test_another_users_order_is_not_found_as_if_it_did_not_exist(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, other, conversation = people(world)
    order(server, identifier, "A-1042", user, status="shipped")
    lookup_id, token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    call = Caller(http, lookup_id, token)

    theirs = call(order_id="A-1042", user_id=other)
    missing = call(order_id="A-9999", user_id=other)
    assert theirs.status_code == missing.status_code == 200
    assert theirs.json() == missing.json() == {"found": False}
    assert call(order_id="A-1042", user_id=user).json()["found"] is True

    # The first user's conversation, asked for in the second user's name: refused.
    refused = call(order_id="A-1042", user_id=other, conversation_id=conversation)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "conversation_not_of_user"
    assert "shipped" not in refused.text
    # A scoped lookup needs the end user (a template Intercom left unfilled is no user).
    unscoped = call(order_id="A-1042", user_id="{{user_id}}")
    assert unscoped.status_code == 400 and unscoped.json()["error"]["input"] == "user_id"

    outcomes = [(c.status_code, c.outcome, c.user_id) for c in calls_of(server, lookup_id)]
    assert outcomes == [
        (200, "not_found", other),
        (200, "not_found", other),
        (200, "found", user),
        (403, "conversation_not_of_user", other),
        (400, "missing_input", None),
    ]


def test_an_unscoped_lookup_answers_for_any_user(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    _, other, _ = people(world)
    order(server, identifier, "B-7", None, status="lost")
    lookup_id, token = define(
        server, boss, object_type=identifier, user_scoped=False, **ORDER_LOOKUP
    )
    response = Caller(http, lookup_id, token)(order_id="B-7", user_id=other)
    assert response.json()["order"]["status"] == "lost"


def test_refusals_are_answered_and_recorded(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    order(server, identifier, "A-1", user, status="shipped")
    lookup_id, token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    other_lookup, other_token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    call = Caller(http, lookup_id, token)

    # 401: no token, a wrong one, another lookup's.
    for bad in (None, "flk_nope", other_token):
        response = call(token=bad, order_id="A-1", user_id=user)
        assert response.status_code == 401, bad
        assert response.json()["error"]["code"] == "unauthorized"
        assert "WWW-Authenticate" in response.headers and "shipped" not in response.text
    # 400: a missing input, named.
    missing = call(user_id=user)
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "code": "missing_input", "message": "order_id is required.", "input": "order_id"
    }  # fmt: skip
    # 404: no such lookup; a disabled one.
    assert Caller(http, "lkp_nothing", token)(order_id="A-1").status_code == 404
    with server.db.transaction() as session:
        lookups.set_enabled(session, boss, lookup_id, False)
    disabled = call(order_id="A-1", user_id=user)
    assert disabled.status_code == 404 and disabled.json()["error"]["code"] == "not_found"

    statuses = [(c.status_code, c.outcome) for c in calls_of(server, lookup_id)]
    assert statuses == [
        (401, "unauthorized"), (401, "unauthorized"), (401, "unauthorized"),
        (400, "missing_input"), (404, "not_found"),
    ]  # fmt: skip
    assert calls_of(server, other_lookup) == []


def test_old_call_records_are_pruned_as_calls_arrive(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    """A record names its caller and inputs: it is kept FINDESK_LOOKUP_CALLS_RETENTION_DAYS (30),
    then goes with the lookup's next call."""
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    lookup_id, token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    other_lookup, _ = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    assert server.settings.lookup_calls_retention_days == 30
    now = utcnow()
    old = {"inputs": {}, "status_code": 200, "outcome": "found", "summary": "old"}
    with server.db.transaction() as session:
        session.execute(
            insert(LookupCall),
            [
                {**old, "lookup_id": lookup_id, "at": now - timedelta(days=31)},
                {**old, "lookup_id": lookup_id, "at": now - timedelta(days=29)},
                {**old, "lookup_id": other_lookup, "at": now - timedelta(days=31)},
            ],
        )
    assert Caller(http, lookup_id, token)(order_id="A-1", user_id=user).status_code == 200
    kept = [(c.summary, c.at > now - timedelta(days=30)) for c in calls_of(server, lookup_id)]
    assert kept == [("old", True), ("order A-1: found nothing", True)], kept
    assert [c.summary for c in calls_of(server, other_lookup)] == ["old"]  # its own calls prune it


def test_inputs_are_checked_by_their_declared_type(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, other, _ = people(world)
    for n, items in enumerate((3, 3, 5)):
        order(server, identifier, f"I-{n}", user, status=f"s{n}", items=items)
    order(server, identifier, "I-other", other, status="theirs", items=3)
    lookup_id, token = define(
        server, boss, object_type=identifier, kind="object_by_attribute", attribute="items",
        inputs=[{"name": "item_count", "type": "integer"}],
        fields=[{"name": "status"}, {"name": "items"}],
    )  # fmt: skip
    call = Caller(http, lookup_id, token)

    bad = call(item_count="three", user_id=user)
    assert bad.status_code == 400
    assert bad.json()["error"]["input"] == "item_count"
    assert "integer" in bad.json()["error"]["message"]

    found = call(item_count="3", user_id=user).json()
    assert found["found"] is True and found["count"] == 2
    assert sorted(r["id"] for r in found["results"]) == ["I-0", "I-1"]  # not the other user's
    assert all(r["items"] == 3 for r in found["results"])
    assert call(item_count="4", user_id=user).json() == {"found": False}


def test_over_the_rate_limit_is_429_with_retry_after(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    lookup_id, token = define(
        server, boss, object_type=identifier, rate_limit_per_minute=3, **ORDER_LOOKUP
    )
    call = Caller(http, lookup_id, token)
    # Refused calls without a valid token do not use the limit up.
    assert call(token="flk_nope", order_id="X", user_id=user).status_code == 401
    assert [call(order_id="X", user_id=user).status_code for _ in range(3)] == [200] * 3
    over = call(order_id="X", user_id=user)
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert call(order_id="X", user_id=user).status_code == 429
    outcomes = [c.status_code for c in calls_of(server, lookup_id)]
    assert outcomes == [401, 200, 200, 200, 429, 429]


def test_a_revoked_token_stops_working(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    lookup_id, _ = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    with server.db.transaction() as session:
        token_id, token = lookups.issue_token(session, lookup_id, "second")
    call = Caller(http, lookup_id, token)
    assert call(order_id="X", user_id=user).status_code == 200
    with server.db.transaction() as session:
        lookups.revoke_token(session, token_id)
    assert call(order_id="X", user_id=user).status_code == 401


def test_the_ticket_kinds(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    user, other, conversation = people(world)
    with server.db.transaction() as session:
        kind = tickets.create_type(
            session, boss, TicketTypeCreate(name=f"Refund {conversation[-6:]}")
        )
        made = tickets.convert(
            session, conversation, agent_actor(boss.id), ticket_type_id=kind.id,
            attributes={"_default_title_": "Refund for A-1042"},
        )  # fmt: skip
        number = made.number
    fields = [{"name": "ticket_id"}, {"name": "state"}, {"name": "title"}]
    open_id, open_token = define(server, boss, kind="user_open_tickets", fields=fields)
    state_id, state_token = define(server, boss, kind="conversation_ticket_state", fields=fields)

    mine = Caller(http, open_id, open_token)(user_id=user).json()
    assert mine == {
        "found": True, "count": 1,
        "tickets": [{"ticket_id": str(number), "state": "Submitted", "title": "Refund for A-1042"}],
    }  # fmt: skip
    assert Caller(http, open_id, open_token)(user_id=other).json() == {"found": False}

    state = Caller(http, state_id, state_token)
    answered = state(user_id=user, conversation_id=conversation)
    assert answered.json()["ticket"]["state"] == "Submitted"
    assert state(user_id=other, conversation_id=conversation).status_code == 403
    assert state(user_id=user).json()["error"]["input"] == "conversation_id"


def test_the_order_is_read_by_the_unique_index(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    order(server, identifier, "A-5", user, status="packed")
    lookup_id, token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    with server.db.transaction() as session:  # a type with many orders, its statistics known
        type_id = session.scalars(
            select(ObjectType.id).where(ObjectType.identifier == identifier)
        ).one()
        session.execute(
            insert(ObjectInstance),
            [{"id": f"coi_{type_id[-8:]}{n:06d}", "type_id": type_id, "external_id": f"Z-{n}",
              "custom_attributes": {"status": "new"}} for n in range(5000)],
        )  # fmt: skip
        # Calls of other lookups, and of this one an hour ago.
        old = utcnow() - timedelta(hours=1)
        session.execute(
            insert(LookupCall),
            [{"lookup_id": lookup_id if n % 2 else f"lkp_other{n % 50}", "inputs": {},
              "status_code": 200, "outcome": "found", "counted": True, "duration_ms": 1,
              "summary": "", "at": old} for n in range(5000)],
        )  # fmt: skip
    with server.db.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    with statements_sent(server.db.engine) as sent:
        assert Caller(http, lookup_id, token)(order_id="A-5", user_id=user).status_code == 200
    statements = [(s, p) for s, p in sent if "custom_object_instances" in s]
    counts = [(s, p) for s, p in sent if "count(*)" in s and "lookup_calls" in s]
    # One read of the instance (by type and external id); the link is read by its key.
    [(statement, parameters)] = statements
    assert "external_id" in statement
    detail = explain(server, statement, parameters)
    if server.db.is_sqlite:  # (SQLite names a unique constraint's index itself)
        assert "custom_object_instances USING INDEX sqlite_autoindex" in detail, detail
        assert "(type_id=? AND external_id=?)" in detail, detail
    else:
        assert "Index Scan using uq_custom_object_instances_external" in detail, detail
    # The rate limit's count of the last minute's calls: on an index of the lookup's calls by
    # time (the planner may pick either), never a scan of every call.
    [(statement, parameters)] = counts
    plan = explain(server, statement, parameters)
    assert "ix_lookup_calls_rate" in plan or "ix_lookup_calls_lookup_at" in plan, plan
    assert "Seq Scan" not in plan and "SCAN lookup_calls" not in plan, plan


def explain(server: LiveServer, statement: str, parameters: Any) -> str:
    with server.db.engine.connect() as connection:
        if server.db.is_sqlite:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            detail = " ".join(str(row[-1]) for row in plan)
        else:
            plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            detail = " ".join(str(row[0]) for row in plan)
        connection.rollback()
    return detail


def test_the_connector_definitions_for_the_intercom_sync(server: LiveServer, boss: Agent) -> None:
    identifier = order_type(server, boss)
    lookup_id, _ = define(server, boss, object_type=identifier, direct_fin_usage=False,
                          audiences=["users", "leads"], **ORDER_LOOKUP)  # fmt: skip
    disabled_id, _ = define(server, boss, object_type=identifier, enabled=False, **ORDER_LOOKUP)
    with server.db.read_session() as session:
        found = lookups.connector_definitions(session, "https://help.example.com/")
    keys = [d.key for d in found]
    assert lookup_id in keys and disabled_id not in keys
    [definition] = [d for d in found if d.key == lookup_id]
    assert definition.http_method == "get"
    assert definition.url == (
        f"https://help.example.com/api/connectors/{lookup_id}?order_id={{{{order_id}}}}"
        "&user_id={{user_id}}&conversation_id={{conversation_id}}"
    )
    assert definition.data_inputs == [
        {"name": "order_id", "type": "string", "description": "The order number", "required": True}
    ]
    assert (definition.direct_fin_usage, definition.audiences) == (False, ["leads", "users"])
    assert definition.mock_response == {
        "found": True,
        "order": {"id": "A-1042", "status": "sample status", "email": "****mail",
                  "total": "19.90"},
    }  # fmt: skip


def test_concurrent_callers_get_no_more_than_the_limit(
    server: LiveServer, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    lookup_id, token = define(
        server, boss, object_type=identifier, rate_limit_per_minute=5, **ORDER_LOOKUP
    )
    start = threading.Barrier(12)

    def one(_: int) -> int:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            call = Caller(client, lookup_id, token)
            start.wait(timeout=30)
            return call(order_id="X", user_id=user).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(one, range(12)))
    # Near its limit a lookup's callers take its row lock in turn: the count they read is exact.
    assert statuses == [200] * 5 + [429] * 7


def test_fin_may_keep_the_id_of_a_visitor_merged_into_a_user(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    visitor_conversation, _ = world.conversation(user=world.user(name="Visitor"))
    visitor_id, conversation = visitor_conversation["user"]["id"], visitor_conversation["id"]
    known = world.user(name="Known", email=f"known-{conversation[-8:]}@example.com")
    order(server, identifier, "M-1", str(known["id"]), status="shipped")
    with server.db.transaction() as session:
        merge_into(session, session.get(EndUser, visitor_id), session.get(EndUser, known["id"]),
                   SYSTEM)  # fmt: skip
    lookup_id, token = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    # The visitor's old id, which Fin still holds, stands for the user it was merged into.
    answered = Caller(http, lookup_id, token)(
        order_id="M-1", user_id=visitor_id, conversation_id=conversation
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["order"]["status"] == "shipped"


def test_a_new_intercom_token_ends_the_connectors_earlier_one_but_not_an_admins(
    server: LiveServer, http: httpx.Client, world: World, boss: Agent
) -> None:
    identifier = order_type(server, boss)
    user, _, _ = people(world)
    lookup_id, by_hand = define(server, boss, object_type=identifier, **ORDER_LOOKUP)
    with server.db.transaction() as session:
        first = mint_token(session, lookup_id)  # the connector's create
    with server.db.transaction() as session:
        second = mint_token(session, lookup_id)  # recreated after Intercom lost it
    assert Caller(http, lookup_id, first)(order_id="X", user_id=user).status_code == 401
    assert Caller(http, lookup_id, second)(order_id="X", user_id=user).status_code == 200
    assert Caller(http, lookup_id, by_hand)(order_id="X", user_id=user).status_code == 200
