"""Schemathesis over the agent API (``/api/v1``), against a live server.

The schema is the app's own OpenAPI document, filtered to ``/api/v1/``; every request goes over
loopback to the `server` fixture, on SQLite and on PostgreSQL.

* `test_agent_api_conforms_to_its_schema`: every operation, as an administrator with a valid
  personal token: no 5xx, only documented status codes and content types, bodies that match the
  response schemas, schema-valid data accepted and invalid data rejected, and (`ignored_auth`)
  a 2xx turns into a 401 without or with a bad token. Positive cases mostly get the ids of
  seeded objects (conversations with messages and tags, articles, agents and their tokens,
  cursors), so success paths run, not only 404/422.
* `test_admin_operations_refuse_other_agents`: the administrators' operations answer an agent
  who is not one with a documented 403, never a 2xx or a 5xx.
* `test_agent_api_refuses_calls_without_a_valid_token`: every operation answers a call without
  a token, or with a bogus, revoked or wrong-kind token, or a deactivated agent's, with a
  documented 401 and `WWW-Authenticate: Bearer ...`.

No operation of the agent API streams (the inbox's live updates over SSE are not in the
document; `test_no_operation_streams` keeps it so, since a live stream cannot be fuzzed: it
never ends).

Bounded and repeatable: a fixed number of examples per operation, derandomized, no example
database.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.generation import GenerationMode
from support.server import LiveServer

from findesk.agents.service import create_agent
from findesk.app import create_app
from findesk.auth.service import create_agent_token
from findesk.idempotency.service import KEY_HEADER
from findesk.kit.db import Database
from findesk.kit.errors import Invalid
from findesk.kit.html import is_blank, sanitize
from findesk.kit.settings import Settings
from findesk.kit.timeutil import isoformat, utcnow
from findesk.knowledge import locales
from findesk.knowledge import service as knowledge
from findesk.knowledge.markdown import render
from findesk.replies.placeholders import problems
from findesk.teams import calendar

MAX_EXAMPLES = 30  # fuzzing phase, per operation (the examples and coverage phases add their own)
NON_ADMIN_EXAMPLES = 10  # per administrators' operation
AUTH_EXAMPLES = 5  # per operation, each sent with every kind of bad credentials
SEED = 20251027
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
]
BASIC_CHECKS = CHECKS[:5]
CI_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
ADMIN_PATHS = (
    r"^/api/v1/(agents/\{agent_id\}/|custom_object_types|reports/|routing-rules/preview|webhooks)"
)
MAX_BODY_BYTES = Settings.model_fields["max_body_bytes"].default


def _app_schema() -> dict[str, Any]:
    # Never connected: building the OpenAPI document needs no database.
    url = "sqlite:////nonexistent/findesk-openapi.db"
    db = Database(url)
    try:
        return create_app(Settings(database_url=url), db).openapi()
    finally:
        db.dispose()


def _config(phases: dict[str, Any] | None = None, **generation: Any) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # A NUL character cannot be stored, and the API answers it with a 422 on purpose;
            # valid data, as far as this run is concerned, has none.
            "generation": {
                "deterministic": True,
                "database": "none",
                "allow-x00": False,
                # The tests send the credentials themselves: a generated Authorization header,
                # replaced by theirs, would make negative cases ("Authorization missing") that
                # are not. Calls without credentials are `ignored_auth`'s and
                # test_agent_api_refuses_calls_without_a_valid_token's.
                "with-security-parameters": False,
                **generation,
            },
            "phases": phases or {},
            # A body past the size limit is refused before it is parsed, with the documented
            # 413: as much a rejection of invalid data as the 4xx schemathesis lists by default.
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [
                        400,
                        401,
                        403,
                        404,
                        405,
                        406,
                        409,
                        413,
                        415,
                        422,
                        428,
                        429,
                        "5xx",
                    ]
                }
            },
        }
    )


SCHEMA_DOCUMENT = _app_schema()
QUICK = {"examples": {"enabled": False}, "coverage": {"enabled": False}}
schema = schemathesis.openapi.from_dict(SCHEMA_DOCUMENT, config=_config()).include(
    path_regex=r"^/api/v1/"
)
admin_schema = schemathesis.openapi.from_dict(
    SCHEMA_DOCUMENT, config=_config(QUICK, mode="positive")
).include(path_regex=ADMIN_PATHS)
auth_schema = schemathesis.openapi.from_dict(SCHEMA_DOCUMENT, config=_config(QUICK)).include(
    path_regex=r"^/api/v1/"
)
ALL_OPERATIONS = {op.ok().label for op in schema.get_all_operations()}


@dataclass
class Seeded:
    """Objects that exist on the server under test, and what the run saw."""

    base_url: str
    token: str  # an administrator's
    admin_id: str
    agent_token: str  # an agent's who is not an administrator
    agent_id: str
    fin_agent_id: str
    # Fuzzed administration happens to this agent (deactivated, reactivated, tokens revoked).
    target_id: str
    target_token_ids: list[str]
    user_id: str
    conversation_ids: list[str]
    message_ids: dict[str, list[str]]  # per conversation, oldest first
    tags: list[str]
    cursor: str
    article_ids: list[str]
    reply_ids: list[str]
    macro_ids: list[str]
    object_type: str  # a custom object type's identifier (never changed by the run)
    object_ids: list[str]  # its instances
    object_external_ids: list[str]
    # Tickets: conversions use ticket_type_id (a customer type, never changed by the run);
    # fuzzed type and attribute changes happen to target_type_id and its list attribute.
    ticket_type_id: str
    target_type_id: str
    target_attribute_id: str
    ticket_ids: list[str]
    new_conversation: Callable[[], str]
    fin_token: str = ""  # to make a fresh visitor for each convert that names FRESH_VISITOR
    team_ids: list[str] = field(default_factory=list)  # never deleted by the run
    rule_ids: list[str] = field(default_factory=list)  # never deleted by the run
    policy_ids: list[str] = field(default_factory=list)  # never deleted by the run
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


# The seeded objects of the server under test (one backend at a time), for the hooks below.
CURRENT: dict[str, Seeded] = {}
# Stands for an article made just before the call: DELETE would otherwise delete the seeded
# ones once, then answer 404 for the rest of the run.
FRESH_ARTICLE = "art_fresh-for-this-call"
FRESH_LOCALE = "fresh-locale-for-this-call"
FRESH_REPLY = "rep_fresh-for-this-call"
FRESH_WEBHOOK = "whe_fresh-for-this-call"
# A webhook the schema test may register: a public address (no DNS here: a literal one),
# subscribed to the one event nothing raises in this run, so no call ever goes out.
WEBHOOK_BODY = {"url": "https://1.1.1.1/findesk-schema-test", "events": ["sla.breached"]}
FRESH_MACRO = "mac_fresh-for-this-call"
# Stands for a visitor made just before the call: a merge deletes the visitor it converts.
FRESH_VISITOR = "usr_fresh-visitor-for-this-call"
FRESH_OBJECT = "coi_fresh-for-this-call"
FRESH_OBJECT_EXTERNAL_ID = "fresh-for-this-call"
FRESH_TYPE = "FreshForThisCall"
ORDER_TYPE = {
    "name": "Order",
    "attributes": [
        {"name": "order_number", "type": "string", "label": "Order number"},
        {"name": "total", "type": "decimal"},
        {"name": "paid", "type": "boolean"},
    ],
    "title_attribute": "order_number",
}
ORDER_VALUES = {"order_number": "A-1", "total": "12.50", "paid": True}
# A conversation converts once; attributes added to a type stay: each call gets a new one.
FRESH_CONVERSATION = "conv_fresh-for-this-call"
FRESH_TICKET_TYPE = "tty_fresh-for-this-call"
# A team (with the target agent as its member) or a routing rule made just before a DELETE.
FRESH_TEAM = "team_fresh-for-this-call"
FRESH_RULE = "rrl_fresh-for-this-call"
# An SLA policy made just before a DELETE; the seeded one has every target (a patch may clear
# some: a policy must keep one).
FRESH_POLICY = "slp_fresh-for-this-call"
SEEDED_POLICY = {
    "name": "Default",
    "first_response_minutes": 30,
    "next_response_minutes": 60,
    "resolution_minutes": 480,
}
SLA_MINUTES = ("first_response_minutes", "next_response_minutes", "resolution_minutes")
SEEDED_RULE = {
    "name": "Billing",
    "conditions": [{"field": "tag", "op": "is", "value": "billing"}],
    "actions": {"priority": "High"},
}


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _new_agent(server: LiveServer, role: str = "agent", tokens: int = 1) -> tuple[str, list[str]]:
    with server.db.transaction() as session:
        agent = create_agent(
            session, email=f"st-{uuid.uuid4().hex[:10]}@example.com", name="Sam Fuzz", role=role
        )
        return agent.id, [create_agent_token(session, agent) for _ in range(tokens)]


@pytest.fixture(scope="module")
def seeded(server: LiveServer) -> Iterator[Seeded]:
    admin_id, (admin_token,) = _new_agent(server, role="admin")
    # A second administrator: deactivating an administrator is not always the last one's.
    _new_agent(server, role="admin")
    agent_id, (agent_token,) = _new_agent(server)
    target_id, _ = _new_agent(server, tokens=3)
    fin = server.fin_world()
    user = fin.user(email="seed@example.com")
    conversation_ids: list[str] = []
    message_ids: dict[str, list[str]] = {}
    for n in range(3):
        conversation, first = fin.conversation(user, body=f"<p>Question {n}</p>")
        ids = [first["id"]]
        for k in range(4):
            ids.append(fin.fin_says(conversation["id"], f"<p>Answer {n}.{k}</p>")["id"])
            ids.append(fin.user_says(conversation["id"], user["id"], f"<p>More {k}</p>")["id"])
        conversation_ids.append(conversation["id"])
        message_ids[conversation["id"]] = ids
    tags = ["billing", "vip"]
    with httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    ) as api:
        waiting, human, _ = conversation_ids
        fin.hand_over(waiting)
        _ok(api.post(f"/conversations/{human}/take-over"))
        for conversation_id in conversation_ids:
            _ok(api.patch(f"/conversations/{conversation_id}", json={"tags": tags}))
        _ok(api.post(f"/conversations/{human}/messages", json={"body": "<p>On it</p>"}), 201)
        cursor = _ok(api.get("/conversations", params={"limit": 1}))["next_cursor"]
        assert cursor
        article_ids = [
            _ok(api.post("/articles", json=article), 201)["id"]
            for article in (
                {"title": "Refunds", "body": "# Refunds\n\nWithin 30 days.", "state": "published"},
                {"title": "Shipping", "body": "<p>Two days.</p>", "body_format": "html"},
            )
        ]
        translation = {"locale": "de", "title": "Versand", "body": "Zwei Tage."}
        _ok(api.post(f"/articles/{article_ids[1]}/translations", json=translation), 201)
        target_token_ids = [t["id"] for t in _ok(api.get(f"/agents/{target_id}/tokens"))]
        reply_ids = [_ok(api.post("/saved-replies", json=SHARED_REPLY), 201)["id"]]
        macro_ids = [_ok(api.post("/macros", json=SHARED_MACRO), 201)["id"]]
        object_type = f"Order{uuid.uuid4().hex[:8]}"
        _ok(api.post("/custom_object_types", json={"identifier": object_type, **ORDER_TYPE}), 201)
        instances = [
            _ok(
                api.post(
                    f"/custom_object_instances/{object_type}",
                    json={"external_id": f"order-{n}", "custom_attributes": ORDER_VALUES},
                )
            )
            for n in range(3)
        ]
        for instance in instances:
            _ok(
                api.put(
                    f"/custom_object_instances/{object_type}/{instance['id']}/contacts/{user['id']}"
                )
            )
        ticket_type_id = _ok(api.post("/ticket_types", json=_ticket_type()))["id"]
        target = _ok(api.post("/ticket_types", json=_ticket_type()))
        (target_attribute_id,) = [
            a["id"] for a in target["ticket_type_attributes"]["data"] if a["data_type"] == "list"
        ]
        converted, _ = fin.conversation(user, body="<p>My order never came</p>")
        ticket_ids = [
            _ok(
                api.post(
                    f"/conversations/{converted['id']}/convert",
                    json={"ticket_type_id": ticket_type_id, "attributes": TICKET_ATTRIBUTES},
                )
            )["id"]
        ]
        team_ids = [
            _ok(
                api.post(
                    "/teams",
                    json={"name": f"Fuzzed {uuid.uuid4().hex[:8]}", "member_ids": [agent_id]},
                ),
                201,
            )["id"]
        ]
        rule_ids = [_ok(api.post("/routing-rules", json=SEEDED_RULE), 201)["id"]]
        policy_ids = [_ok(api.post("/sla-policies", json=SEEDED_POLICY), 201)["id"]]
    CURRENT["seeded"] = Seeded(
        base_url=server.base_url,
        token=admin_token,
        admin_id=admin_id,
        agent_token=agent_token,
        agent_id=agent_id,
        fin_agent_id=server.fin_agent_id,
        target_id=target_id,
        target_token_ids=target_token_ids,
        user_id=user["id"],
        conversation_ids=conversation_ids,
        message_ids=message_ids,
        tags=tags,
        cursor=cursor,
        article_ids=article_ids,
        reply_ids=reply_ids,
        macro_ids=macro_ids,
        fin_token=server.fin_token(),
        object_type=object_type,
        object_ids=[i["id"] for i in instances],
        object_external_ids=[i["external_id"] for i in instances],
        ticket_type_id=ticket_type_id,
        target_type_id=target["id"],
        target_attribute_id=target_attribute_id,
        ticket_ids=ticket_ids,
        team_ids=team_ids,
        rule_ids=rule_ids,
        policy_ids=policy_ids,
        new_conversation=lambda: str(fin.conversation(user, body="<p>Help</p>")[0]["id"]),
    )
    yield CURRENT["seeded"]
    CURRENT.clear()


SHARED_REPLY = {"title": "Thanks", "body": "<p>Thanks, {{user.name|there}}!</p>", "shared": True}
# Applied again and again to the seeded conversations: a change that can always be made.
SHARED_MACRO = {"name": "VIP", "actions": [{"type": "add_tags", "tags": ["vip"]}], "shared": True}
TICKET_ATTRIBUTES = {"_default_title_": "Found a bug"}
TICKET_STATES = ["submitted", "in_progress", "waiting_on_customer", "resolved"]


def _ticket_type() -> dict[str, Any]:
    """A customer ticket type, a name of its own: an optional string and an optional list."""
    return {
        "name": f"Refund {uuid.uuid4().hex[:10]}",
        "ticket_type_attributes": [
            {"name": "note", "data_type": "string"},
            {"name": "priority", "data_type": "list", "list_items": [{"label": "Low"}]},
        ],
    }


def flatmap_case(context: schemathesis.HookContext, case: Case) -> st.SearchStrategy[Case]:
    """Fuzzing: point the ids of positive cases at objects that exist, so 2xx paths are reached."""
    seeded = CURRENT.get("seeded")
    if seeded is None or case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return st.just(case)

    @st.composite
    def rewrite(draw: st.DrawFn) -> Case:
        _with_known_ids(case, seeded, draw)
        return case

    return rewrite()


schema.hook(flatmap_case)
admin_schema.hook(flatmap_case)
auth_schema.hook(flatmap_case)

MESSAGE_BODIES = st.sampled_from(
    ["<p>Hello!</p>", "Plain text", '<p><b>Bold</b> <a href="https://example.com/a">link</a></p>']
)
COIN = st.sampled_from([True, True, False])  # mostly the known id; True is the simplest


def _with_known_ids(case: Case, seeded: Seeded, draw: st.DrawFn) -> None:
    path = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    query = case.query if isinstance(case.query, dict) else {}
    body = case.body if isinstance(case.body, dict) else {}
    conversation_id = path.get("conversation_id")
    if conversation_id is not None and draw(COIN):
        conversation_id = path["conversation_id"] = draw(st.sampled_from(seeded.conversation_ids))
    if "agent_id" in path and draw(COIN):
        # Never the caller: deactivated, it could not call any more.
        path["agent_id"] = draw(st.sampled_from([seeded.target_id, seeded.fin_agent_id]))
    if "token_id" in path and draw(COIN):
        path["token_id"] = draw(st.sampled_from(seeded.target_token_ids))
    if "article_id" in path and draw(COIN):
        # A translation is made (POST) or deleted on an article of its own; the seeded second
        # article has a German one to read and change.
        fresh = case.method == "DELETE" or (
            case.method == "POST" and case.path.endswith("/translations")
        )
        choices = [FRESH_ARTICLE] if fresh else seeded.article_ids
        if "locale" in path:
            choices = [FRESH_ARTICLE] if fresh else seeded.article_ids[1:]
            path["locale"] = FRESH_LOCALE if fresh else "de"
        path["article_id"] = draw(st.sampled_from(choices))
    for name, fresh, known in (
        ("reply_id", FRESH_REPLY, seeded.reply_ids),
        ("macro_id", FRESH_MACRO, seeded.macro_ids),
    ):
        if name in path and draw(COIN):
            path[name] = fresh if case.method == "DELETE" else draw(st.sampled_from(known))
    if "endpoint_id" in path and draw(COIN):
        path["endpoint_id"] = FRESH_WEBHOOK  # deleted: one of its own
    if case.path == "/api/v1/visitors/convert" and draw(COIN):
        # A visitor that exists, merged into the seeded user (who has an email).
        body["visitor"] = {"id": FRESH_VISITOR}
        body["user"] = {"id": seeded.user_id}
    if "custom_object_type_identifier" in path and draw(COIN):
        path["custom_object_type_identifier"] = seeded.object_type
    if "id" in path and draw(COIN):
        deletes = case.method == "DELETE" and case.path.endswith("{id}")
        path["id"] = FRESH_OBJECT if deletes else draw(st.sampled_from(seeded.object_ids))
    if "contact_id" in path and draw(COIN):
        path["contact_id"] = seeded.user_id
    if "identifier" in path and draw(COIN):
        # Changed or deleted: a type of its own; read: the seeded one.
        path["identifier"] = FRESH_TYPE if case.method != "GET" else seeded.object_type
    if query.get("external_id") is not None and draw(COIN):
        query["external_id"] = (
            FRESH_OBJECT_EXTERNAL_ID
            if case.method == "DELETE"
            else draw(st.sampled_from(seeded.object_external_ids))
        )
    if query.get("references_contact_id") is not None and draw(COIN):
        query["references_contact_id"] = seeded.user_id
    if query.get("references_conversation_id") is not None and draw(COIN):
        query["references_conversation_id"] = draw(st.sampled_from(seeded.conversation_ids))
    if "ticket_id" in path and draw(COIN):
        path["ticket_id"] = draw(st.sampled_from(seeded.ticket_ids))
    if "ticket_type_id" in path and draw(COIN):
        if case.method == "POST":
            path["ticket_type_id"] = FRESH_TICKET_TYPE
        elif "attribute_id" in path or case.method == "PUT":
            path["ticket_type_id"] = seeded.target_type_id
        else:
            path["ticket_type_id"] = draw(
                st.sampled_from([seeded.ticket_type_id, seeded.target_type_id])
            )
    if "attribute_id" in path and draw(COIN):
        path["attribute_id"] = seeded.target_attribute_id
    if case.path.endswith("/convert") and draw(COIN):
        path["conversation_id"] = FRESH_CONVERSATION
    if "team_id" in path and draw(COIN):
        # Deleted, or a member removed: a team of its own, with the target as its member.
        deletes = case.method == "DELETE"
        path["team_id"] = FRESH_TEAM if deletes else seeded.team_ids[0]
        if deletes and "agent_id" in path:
            path["agent_id"] = seeded.target_id
    if "rule_id" in path and draw(COIN):
        path["rule_id"] = FRESH_RULE if case.method == "DELETE" else seeded.rule_ids[0]
    if "policy_id" in path and draw(COIN):
        path["policy_id"] = FRESH_POLICY if case.method == "DELETE" else seeded.policy_ids[0]
    messages = seeded.message_ids.get(conversation_id or "", [])
    if query.get("user_id") is not None and draw(COIN):
        query["user_id"] = seeded.user_id
    if query.get("tag") is not None and draw(COIN):
        query["tag"] = draw(st.sampled_from(seeded.tags))
    if query.get("after_id") is not None and messages and draw(COIN):
        query["after_id"] = draw(st.sampled_from(messages))
    if query.get("before") is not None and messages:
        query["before"] = draw(st.sampled_from(messages))
    if body.get("assignee_id") is not None and draw(COIN):
        body["assignee_id"] = draw(
            st.sampled_from([seeded.admin_id, seeded.agent_id, seeded.fin_agent_id])
        )
    if body.get("tags") is not None and draw(COIN):
        body["tags"] = draw(st.lists(st.sampled_from(seeded.tags), unique=True))
    if case.path.endswith("/messages") and case.method == "POST" and "body" in body:
        body["body"] = draw(st.sampled_from([body["body"], draw(MESSAGE_BODIES)]))


def _as_the_rules_want(case: Case, seeded: Seeded) -> None:
    """A positive case (of any phase), just before the call: what the schema cannot say.

    The schema promises which requests are well formed; these rules, enforced by the domain
    with a 422, are about the data's meaning, and a request that breaks one is rightly
    refused. Each is a narrow, documented rule; anything else stays as generated."""
    path = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    query = case.query if isinstance(case.query, dict) else {}
    body = case.body if isinstance(case.body, dict) else {}
    if query.get("cursor") is not None:
        # An opaque cursor is one the API gave out; any other string is a 422.
        query["cursor"] = seeded.cursor
    if query.get("before") is not None and query.get("after_id") is not None:
        del query["after_id"]  # either or neither, never both
    if query.get("before") is not None:
        # `before` names a message of the conversation; any other id is a 422.
        messages = seeded.message_ids.get(path.get("conversation_id", ""))
        if messages:
            query["before"] = messages[-1]
        else:
            del query["before"]
    if case.path.endswith("/messages") and case.method == "POST" and "body" in body:
        text = body["body"]
        if is_blank(sanitize(text) if isinstance(text, str) else None):
            body["body"] = "<p>Hello!</p>"  # nothing left once sanitised
    if (
        case.method == "PATCH"
        and case.path == "/api/v1/conversations/{conversation_id}"
        and body.get("snoozed_until") is not None
    ):
        # A snooze ends in the future and within a year: a rule about now, not the shape.
        body["snoozed_until"] = isoformat(utcnow() + timedelta(days=1))
    if case.path.startswith("/api/v1/articles") and case.method in ("POST", "PATCH"):
        _article_as_the_rules_want(case, body)
    if case.path.startswith(("/api/v1/saved-replies", "/api/v1/macros")) and case.method in (
        "POST",
        "PATCH",
    ):
        _saved_as_the_rules_want(body, seeded)
    if case.path.startswith("/api/v1/custom_object_"):
        _objects_as_the_rules_want(case, body)
    if case.path.startswith("/api/v1/reports/") and query.get("start") and query.get("end"):
        # A report's end is on or after its start, at most two years on: a rule about the two
        # dates together (a 400), not the shape of either.
        start, end = date.fromisoformat(query["start"]), date.fromisoformat(query["end"])
        if not start <= end <= start + timedelta(days=365):
            query["end"] = query["start"]
    if case.path.startswith(("/api/v1/ticket", "/api/v1/conversations/{conversation_id}/convert")):
        _tickets_as_the_rules_want(case, path, body, seeded)
    if case.path.startswith(("/api/v1/teams", "/api/v1/routing-rules")) and case.method in (
        "POST",
        "PATCH",
    ):
        _routing_as_the_rules_want(case, body, seeded)
    if case.path.startswith("/api/v1/sla-policies") and case.method in ("POST", "PATCH"):
        _sla_as_the_rules_want(case, body, seeded)
    if case.path == "/api/v1/webhooks" and case.method == "POST":
        body.update(WEBHOOK_BODY)  # the URL must resolve to a public address
    if case.headers and isinstance(case.headers.get(KEY_HEADER), str):
        # A new key per request, as clients must send (a reused one is a 422); the replays
        # themselves are tests/agent_api/test_idempotency.py's.
        case.headers[KEY_HEADER] = f"{uuid.uuid4().hex}:{case.headers[KEY_HEADER]}"[:255]


def _article_as_the_rules_want(case: Case, body: dict[str, Any]) -> None:
    """knowledge.service's own checks of each field (a title of 1 to 255 characters once
    whitespace is collapsed, a language tag, an absolute http(s) URL or blank, a body of at
    most 512 KiB of UTF-8 where the schema counts characters), and no published article
    without a body (kept simple: a body never renders blank)."""
    for name, check, fallback in (
        ("title", knowledge._title, "A title"),
        ("locale", knowledge._locale, "en"),
        ("url", knowledge._url, "https://example.com/help/a"),
        ("body", knowledge._body, "Some text."),
    ):
        value = body.get(name)
        if isinstance(value, str):
            try:
                check(value)
            except Invalid:
                body[name] = fallback
    text = body.get("body")
    if isinstance(text, str) and any(is_blank(render(text, f)) for f in ("markdown", "html")):
        body["body"] = "Some text."
    if case.path == "/api/v1/articles" and body.get("state") == "published" and "body" not in body:
        body["body"] = "Some text."
    locale = body.get("locale")
    if case.path == "/api/v1/articles/{article_id}" and isinstance(locale, str):
        # The seeded second article has a German translation: it cannot itself become German.
        if locales.intercom_locale(locale) == "de":
            body["locale"] = "en"
    if "/translations" in case.path:
        # One of Intercom's locales, not the article's own (English); a description of text.
        locale = body.get("locale")
        if isinstance(locale, str) and locales.exact(locale) in (None, "en"):
            body["locale"] = "de"
        description = body.get("description")
        if isinstance(description, str):
            try:
                knowledge._description(description)
            except Invalid:
                body["description"] = "Short."
        if case.method == "POST" and body.get("state") == "published" and "body" not in body:
            body["body"] = "Some text."


def _sla_as_the_rules_want(case: Case, body: dict[str, Any], seeded: Seeded) -> None:
    """sla's own checks: teams that exist, a team to reassign to, and at least one target
    (a patch never clears one here: the seeded policy keeps all three)."""
    for key in ("team_id", "escalation_team_id"):
        if body.get(key) is not None:
            body[key] = seeded.team_ids[0]
    if body.get("escalation") == "reassign" or "escalation_team_id" in body:
        body["escalation_team_id"] = seeded.team_ids[0]
    if case.method == "POST" and not any(body.get(name) for name in SLA_MINUTES):
        body["first_response_minutes"] = 30
    if case.method == "PATCH":
        for name in SLA_MINUTES:
            if name in body and body[name] is None:
                body[name] = 30


def _routing_as_the_rules_want(case: Case, body: dict[str, Any], seeded: Seeded) -> None:
    """teams and routing's own checks: a team's name not blank once trimmed and not taken,
    its members agents who exist; a rule's team one that exists, a time zone that exists, a
    value that fits its operator (``in`` a list, ``gt`` and ``lt`` a number, ``is``,
    ``is_not`` and ``contains`` one value), a tag condition naming a tag, a custom object type
    and attribute or a ticket attribute that exist, and something to do.
    """
    if case.path.startswith("/api/v1/teams"):
        if isinstance(body.get("name"), str):
            body["name"] = f"Team {uuid.uuid4().hex[:12]}"
        if isinstance(body.get("member_ids"), list):
            body["member_ids"] = [seeded.agent_id] if body["member_ids"] else []
        _team_hours_as_the_rules_want(body)
        return
    for condition in body.get("conditions") or []:
        if not isinstance(condition, dict):
            continue
        value, op = condition.get("value"), condition.get("op", "is")
        field = condition.get("field")
        if isinstance(field, str) and field.startswith("object."):
            # A custom object type that exists, and one of its attributes.
            parts = field.split(".")
            parts[1] = seeded.object_type
            if len(parts) > 2:
                parts[2] = "order_number"
            condition["field"] = ".".join(parts)
        elif isinstance(field, str) and field.startswith("ticket."):
            # A ticket attribute that some ticket type has (type and state are every ticket's).
            if field.split(".", 1)[1] not in ("type", "state", "title", "description"):
                condition["field"] = "ticket.note"
        if condition.get("field") == "time":
            if isinstance(value, dict):
                value["timezone"] = "UTC"
        elif condition.get("field") == "tag":
            values = value if isinstance(value, list) else [value]
            if not any(isinstance(v, str) and v.strip() for v in values):
                condition["value"] = "billing"
        elif op == "in" and not (isinstance(value, list) and value):
            condition["value"] = ["Billing"]
        elif op in ("gt", "lt") and (isinstance(value, bool) or not isinstance(value, int | float)):
            condition["value"] = 1
        elif op in ("is", "is_not", "contains") and (value is None or isinstance(value, list)):
            condition["value"] = "Billing"
    actions = body.get("actions")
    if isinstance(actions, dict):
        if actions.get("team_id") is not None:
            actions["team_id"] = seeded.team_ids[0]
        tags = [t for t in actions.get("add_tags") or [] if isinstance(t, str) and t.strip()]
        priority = actions.get("priority")
        if not (actions.get("team_id") or tags or (isinstance(priority, str) and priority.strip())):
            actions["priority"] = "High"


def _team_hours_as_the_rules_want(body: dict[str, Any]) -> None:
    """teams.calendar's own checks: a time zone that exists, a day's intervals that start
    before they end and do not overlap, at least one of them, dates that exist."""
    if isinstance(body.get("timezone"), str):
        body["timezone"] = "Europe/Paris"
    for name, check, fallback in (
        ("business_hours", calendar.check_weekly, {"mon": [["09:00", "17:00"]]}),
        ("holidays", calendar.check_holidays, ["2026-12-25"]),
    ):
        if body.get(name) is not None:
            try:
                check(body[name])
            except Invalid:
                body[name] = fallback


def _objects_as_the_rules_want(case: Case, body: dict[str, Any]) -> None:
    """objects.service's own checks: attribute values of the type's attributes (the seeded
    type's, or none for another), a new type's identifier not taken, attribute names unique and
    a title attribute among them."""
    if case.method == "POST" and case.path.startswith("/api/v1/custom_object_instances"):
        if body.get("custom_attributes") is not None:
            body["custom_attributes"] = dict(ORDER_VALUES)
    if case.path.startswith("/api/v1/custom_object_types") and case.method in ("POST", "PATCH"):
        if case.method == "POST":
            body["identifier"] = f"T{uuid.uuid4().hex[:12]}"
        attributes = body.get("attributes")
        if isinstance(attributes, list):
            unique: dict[Any, Any] = {}
            for attribute in attributes:
                if isinstance(attribute, dict):
                    unique.setdefault(attribute.get("name"), attribute)
            body["attributes"] = list(unique.values())
            names = set(unique)
            if case.method == "PATCH" and "order_number" not in names:
                # The fresh type's title attribute would be gone: a title must be named anew.
                body.setdefault("title_attribute", None)
        elif case.method == "PATCH":
            names = {a["name"] for a in ORDER_TYPE["attributes"]}  # the fresh type's
        else:
            names = set()
        if body.get("title_attribute") is not None and body["title_attribute"] not in names:
            body["title_attribute"] = None


def _shows_text(html: Any) -> bool:
    """replies.service's check of a body: some text once sanitised, known placeholders only."""
    return isinstance(html, str) and not is_blank(sanitize(html)) and not problems(sanitize(html))


def _saved_as_the_rules_want(body: dict[str, Any], seeded: Seeded) -> None:
    """replies.service's own checks: a title or name not blank once trimmed, a body as
    ``_shows_text`` wants, a published article (left out: the seeded ones may be archived by
    then), and macro actions that name what exists (no saved reply is seeded; agents: one that
    is active)."""
    for name in ("title", "name"):
        if isinstance(body.get(name), str) and not body[name].strip():
            body[name] = "A title"
    if "body" in body and body["body"] is not None and not _shows_text(body["body"]):
        body["body"] = "<p>Hello!</p>"
    body.pop("article_id", None)
    for action in body.get("actions") or []:
        if not isinstance(action, dict):
            continue
        if action.get("type") == "reply":
            action.clear()
            action["type"] = "take_over"
        elif action.get("type") == "assign" and action.get("agent_id") is not None:
            action["agent_id"] = seeded.agent_id
        elif action.get("type") == "note" and not _shows_text(action.get("body")):
            action["body"] = "<p>Noted</p>"
        elif action.get("type") == "add_tags":
            # Applied to the seeded conversations: within the limit of tags a conversation has.
            action["tags"] = list(seeded.tags)


def _tickets_as_the_rules_want(
    case: Case, path: dict[str, Any], body: dict[str, Any], seeded: Seeded
) -> None:
    """tickets.service's own checks, about what exists rather than the request's shape: a
    conversation converts once, to a customer type, with the attributes that type has (here
    its required title only) and a state that exists; a ticket type's name is unique (and not
    blank); an attribute's name is unique on its type, a list attribute has items (of known
    ids, different labels, not all archived), and only a list attribute has them. The type
    conversions use is never changed (its changes go to the run's target type), and a ticket
    links only to a tracker ticket (none is seeded)."""
    if case.path.endswith("/convert"):
        if path.get("conversation_id") in seeded.conversation_ids:
            path["conversation_id"] = FRESH_CONVERSATION  # never convert the seeded ones
        body["ticket_type_id"] = seeded.ticket_type_id
        body["attributes"] = dict(TICKET_ATTRIBUTES)
    if case.path == "/api/v1/tickets" and case.method == "POST":
        # A customer ticket for the seeded end user.
        body["ticket_type_id"] = seeded.ticket_type_id
        body["ticket_attributes"] = dict(TICKET_ATTRIBUTES)
        body["contacts"] = [{"id": seeded.user_id}]
    if body.get("ticket_state_id") is not None:
        body["ticket_state_id"] = TICKET_STATES[len(str(body["ticket_state_id"])) % 4]
    if isinstance(body.get("ticket_attributes"), dict) and case.method == "PUT":
        body["ticket_attributes"] = {"_default_description_": "Updated"}
    if "tracker_ticket_id" in body:
        body["tracker_ticket_id"] = None  # no tracker ticket is seeded: unlinking always works
    if case.path.startswith("/api/v1/ticket_types") and case.method in ("POST", "PUT"):
        if path.get("ticket_type_id") in (seeded.ticket_type_id, seeded.target_type_id):
            if case.path.endswith("/attributes"):
                path["ticket_type_id"] = FRESH_TICKET_TYPE  # attributes only ever accumulate
            else:
                path["ticket_type_id"] = seeded.target_type_id
        if "attribute_id" in path and path.get("ticket_type_id") == seeded.target_type_id:
            path["attribute_id"] = seeded.target_attribute_id
        if isinstance(body.get("name"), str):
            body["name"] = f"{body['name'].strip()[:200] or 'Type'} {uuid.uuid4().hex[:10]}"
        if case.path.endswith("/attributes"):
            _attribute_as_the_rules_want(body)
        for attribute in body.get("ticket_type_attributes") or []:
            if isinstance(attribute, dict):
                attribute["name"] = f"a-{uuid.uuid4().hex[:10]}"
                _attribute_as_the_rules_want(attribute)
        if isinstance(body.get("list_items"), list):
            body["list_items"] = _list_items(body["list_items"])


def _attribute_as_the_rules_want(attribute: dict[str, Any]) -> None:
    if isinstance(attribute.get("name"), str):
        attribute["name"] = f"a-{uuid.uuid4().hex[:10]}"
    if attribute.get("data_type") == "list":
        attribute["list_items"] = _list_items(attribute.get("list_items") or [])
    elif "data_type" in attribute:
        attribute.pop("list_items", None)


def _list_items(items: list[Any]) -> list[dict[str, Any]]:
    """New items (no ids), labels of their own, not archived; at least one."""
    return [{"label": f"Item {n}"} for n in range(max(1, min(len(items), 5)))]


def _mislabelled_positive(case: Case) -> bool:
    """A positive case with a negative part: schemathesis's coverage phase, when it finds no
    valid body in time for its template (a busy machine), keeps a negative one (`0`) and still
    labels the cases that vary a header positive."""
    meta = case.meta
    return (
        meta is not None
        and meta.generation.mode == GenerationMode.POSITIVE
        and any(c.mode == GenerationMode.NEGATIVE for c in meta.components.values())
    )


def _prepared(case: Case, seeded: Seeded) -> None:
    """Just before the call: make the article, saved reply or macro that a DELETE case
    deletes, the visitor that a convert merges, the conversation a conversion converts, the
    ticket type an attribute is added to."""
    path = case.path_parameters if isinstance(case.path_parameters, dict) else {}
    if path.get("conversation_id") == FRESH_CONVERSATION:
        path["conversation_id"] = seeded.new_conversation()
    if path.get("ticket_type_id") == FRESH_TICKET_TYPE:
        created = httpx.post(
            f"{seeded.base_url}/api/v1/ticket_types",
            json=_ticket_type(),
            headers={"Authorization": f"Bearer {seeded.token}"},
        )
        path["ticket_type_id"] = _ok(created)["id"]
    for name, fresh, collection, body in (
        ("reply_id", FRESH_REPLY, "saved-replies", SHARED_REPLY),
        ("macro_id", FRESH_MACRO, "macros", SHARED_MACRO),
    ):
        if path.get(name) == fresh:
            created = httpx.post(
                f"{seeded.base_url}/api/v1/{collection}",
                json=body,
                headers={"Authorization": f"Bearer {seeded.token}"},
            )
            path[name] = _ok(created, 201)["id"]
    if path.get("team_id") == FRESH_TEAM:
        created = httpx.post(
            f"{seeded.base_url}/api/v1/teams",
            json={"name": f"Fresh {uuid.uuid4().hex[:10]}", "member_ids": [seeded.target_id]},
            headers={"Authorization": f"Bearer {seeded.token}"},
        )
        path["team_id"] = _ok(created, 201)["id"]
    if path.get("rule_id") == FRESH_RULE:
        created = httpx.post(
            f"{seeded.base_url}/api/v1/routing-rules",
            json=SEEDED_RULE,
            headers={"Authorization": f"Bearer {seeded.token}"},
        )
        path["rule_id"] = _ok(created, 201)["id"]
    if path.get("policy_id") == FRESH_POLICY:
        created = httpx.post(
            f"{seeded.base_url}/api/v1/sla-policies",
            json=SEEDED_POLICY,
            headers={"Authorization": f"Bearer {seeded.token}"},
        )
        path["policy_id"] = _ok(created, 201)["id"]
    if path.get("endpoint_id") == FRESH_WEBHOOK:
        created = httpx.post(
            f"{seeded.base_url}/api/v1/webhooks",
            json=WEBHOOK_BODY,
            headers={"Authorization": f"Bearer {seeded.token}"},
        )
        path["endpoint_id"] = _ok(created, 201)["id"]
    body = case.body if isinstance(case.body, dict) else {}
    visitor = body.get("visitor")
    if isinstance(visitor, dict) and visitor.get("id") == FRESH_VISITOR:
        created = httpx.post(
            f"{seeded.base_url}/api/fin/user",
            json={"object_id": f"visitor-{uuid.uuid4().hex}"},
            headers={"Authorization": f"Bearer {seeded.fin_token}"},
        )
        visitor["id"] = _ok(created, 201)["id"]
    headers = {"Authorization": f"Bearer {seeded.token}"}
    if path.get("identifier") == FRESH_TYPE:
        identifier = f"Fresh{uuid.uuid4().hex[:10]}"
        created = httpx.post(
            f"{seeded.base_url}/api/v1/custom_object_types",
            json={"identifier": identifier, **ORDER_TYPE},
            headers=headers,
        )
        path["identifier"] = _ok(created, 201)["identifier"]
    query = case.query if isinstance(case.query, dict) else {}
    if path.get("id") == FRESH_OBJECT or query.get("external_id") == FRESH_OBJECT_EXTERNAL_ID:
        external_id = f"fresh-{uuid.uuid4().hex}"
        created = httpx.post(
            f"{seeded.base_url}/api/v1/custom_object_instances/{seeded.object_type}",
            json={"external_id": external_id},
            headers=headers,
        )
        fresh = _ok(created)
        if path.get("id") == FRESH_OBJECT:
            path["id"] = fresh["id"]
        if query.get("external_id") == FRESH_OBJECT_EXTERNAL_ID:
            query["external_id"] = external_id
    if isinstance(case.path_parameters, dict) and (
        case.path_parameters.get("article_id") == FRESH_ARTICLE
    ):
        created = httpx.post(
            f"{seeded.base_url}/api/v1/articles",
            json={"title": "To be deleted", "body": "Soon gone."},
            headers={"Authorization": f"Bearer {seeded.token}"},
        )
        case.path_parameters["article_id"] = _ok(created, 201)["id"]
        if case.path_parameters.get("locale") == FRESH_LOCALE:
            translation = {"locale": "de", "title": "Bald weg", "body": "Bald weg."}
            created = httpx.post(
                f"{seeded.base_url}/api/v1/articles/{case.path_parameters['article_id']}"
                "/translations",
                json=translation,
                headers={"Authorization": f"Bearer {seeded.token}"},
            )
            case.path_parameters["locale"] = _ok(created, 201)["locale"]


@schema.hook
def after_call(
    context: schemathesis.HookContext, case: Case, response: schemathesis.Response
) -> None:
    """Count the status codes each operation answered (before any check can stop the test)."""
    seeded = CURRENT.get("seeded")
    if seeded is not None:
        seeded.statuses[case.operation.label][response.status_code] += 1


@schema.parametrize()
@settings(CI_SETTINGS, max_examples=MAX_EXAMPLES)
def test_agent_api_conforms_to_its_schema(case: Case, seeded: Seeded) -> None:
    checks = CHECKS
    if _mislabelled_positive(case):
        checks = [name for name in CHECKS if name != "positive_data_acceptance"]
    elif case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
        _as_the_rules_want(case, seeded)
        if case.path.endswith("/deactivate") and case.path_parameters == {
            "agent_id": seeded.fin_agent_id
        }:
            # The bot that represents Fin cannot be deactivated: a 422 by design (pinned by
            # tests/agents/test_lifecycle.py), a rule about which agent, not the request's shape.
            checks = [name for name in CHECKS if name != "positive_data_acceptance"]
    _prepared(case, seeded)  # after the rules: they may ask for a fresh object
    case.call_and_validate(
        base_url=seeded.base_url,
        headers={"Authorization": f"Bearer {seeded.token}"},
        checks=[getattr(schemathesis.checks, name) for name in checks],
    )


@admin_schema.parametrize()
@settings(CI_SETTINGS, max_examples=NON_ADMIN_EXAMPLES)
def test_admin_operations_refuse_other_agents(case: Case, seeded: Seeded) -> None:
    headers = {"Authorization": f"Bearer {seeded.agent_token}"}
    _as_the_rules_want(case, seeded)
    response = case.call(base_url=seeded.base_url, headers=headers)
    assert response.status_code == 403, (response.status_code, response.text)
    case.validate_response(
        response, checks=[getattr(schemathesis.checks, name) for name in BASIC_CHECKS]
    )


@pytest.fixture(scope="module")
def bad_credentials(server: LiveServer, seeded: Seeded) -> dict[str, str | None]:
    """Authorization header values that must all be refused (None: no header at all)."""
    revoked_id, (revoked,) = _new_agent(server)
    gone_id, (gone,) = _new_agent(server)
    with httpx.Client(
        base_url=f"{server.base_url}/api/v1",
        headers={"Authorization": f"Bearer {seeded.token}"},
        timeout=30,
    ) as api:
        (token,) = _ok(api.get(f"/agents/{revoked_id}/tokens"))
        _ok(api.delete(f"/agents/{revoked_id}/tokens/{token['id']}"))
        _ok(api.post(f"/agents/{gone_id}/deactivate"))
    return {
        "none": None,
        "bogus": f"Bearer fat_{uuid.uuid4().hex}",
        "empty bearer": "Bearer ",
        "revoked": f"Bearer {revoked}",
        "deactivated agent": f"Bearer {gone}",
        "Fin's access token": f"Bearer {server.fin_token()}",
        "token without scheme": seeded.token,
    }


@auth_schema.parametrize()
@settings(CI_SETTINGS, max_examples=AUTH_EXAMPLES)
def test_agent_api_refuses_calls_without_a_valid_token(
    case: Case, seeded: Seeded, bad_credentials: dict[str, str | None]
) -> None:
    if case.headers:
        # Generated security parameters: this test sends its own (or none).
        case.headers.pop("Authorization", None)
    for kind, authorization in bad_credentials.items():
        headers = {} if authorization is None else {"Authorization": authorization}
        response = case.call(base_url=seeded.base_url, headers=headers)
        if len(response.request.body or b"") > MAX_BODY_BYTES:
            # Refused before it is read, credentials or not.
            assert response.status_code == 413, (kind, response.status_code, response.text)
        else:
            assert response.status_code == 401, (kind, response.status_code, response.text)
            challenge = response.headers.get("www-authenticate", [""])[0]
            assert challenge.startswith("Bearer "), (kind, challenge)
        case.validate_response(
            response,
            checks=[getattr(schemathesis.checks, name) for name in BASIC_CHECKS],
            headers=headers,
        )


def test_fuzzing_reached_success_paths(seeded: Seeded) -> None:
    """Ids of seeded objects made it into the requests: every operation answered a 2xx."""
    if not seeded.statuses:
        pytest.skip("test_agent_api_conforms_to_its_schema did not run for this backend")
    without_success = sorted(
        label
        for label in ALL_OPERATIONS
        if not any(200 <= status < 300 for status in seeded.statuses[label])
    )
    assert not without_success, {label: dict(seeded.statuses[label]) for label in without_success}


def test_every_operation_of_the_agent_api_is_fuzzed() -> None:
    conversations = "/api/v1/conversations/{conversation_id}"
    articles = "/api/v1/articles/{article_id}"
    agents = "/api/v1/agents/{agent_id}"
    replies = "/api/v1/saved-replies/{reply_id}"
    macros = "/api/v1/macros/{macro_id}"
    objects = "/api/v1/custom_object_instances/{custom_object_type_identifier}"
    object_types = "/api/v1/custom_object_types"
    ticket_types = "/api/v1/ticket_types/{ticket_type_id}"
    reports = "/api/v1/reports"
    teams = "/api/v1/teams/{team_id}"
    rules = "/api/v1/routing-rules/{rule_id}"
    policies = "/api/v1/sla-policies/{policy_id}"
    expected = {
        "GET /api/v1/me", "GET /api/v1/agents", "GET /api/v1/conversations",
        "GET /api/v1/queues", "GET /api/v1/search", f"GET {conversations}",
        f"PATCH {conversations}",
        f"GET {conversations}/history", f"GET {conversations}/messages",
        f"POST {conversations}/messages", f"POST {conversations}/take-over",
        f"POST {conversations}/hand-back", f"POST {conversations}/typing",
        f"POST {agents}/deactivate", f"POST {agents}/reactivate", f"GET {agents}/tokens",
        f"DELETE {agents}/tokens/{{token_id}}",
        "GET /api/v1/articles", "POST /api/v1/articles", "POST /api/v1/articles/preview",
        f"GET {articles}", f"PATCH {articles}", f"DELETE {articles}",
        f"POST {articles}/publish", f"POST {articles}/archive",
        f"GET {articles}/translations", f"POST {articles}/translations",
        f"GET {articles}/translations/{{locale}}", f"PATCH {articles}/translations/{{locale}}",
        f"DELETE {articles}/translations/{{locale}}",
        "GET /api/v1/saved-replies", "POST /api/v1/saved-replies",
        f"GET {replies}", f"PATCH {replies}", f"DELETE {replies}",
        f"GET {conversations}/saved-replies/{{reply_id}}/render",
        "GET /api/v1/macros", "POST /api/v1/macros",
        f"GET {macros}", f"PATCH {macros}", f"DELETE {macros}",
        f"POST {conversations}/macros/{{macro_id}}",
        "POST /api/v1/visitors/convert",
        f"POST {objects}", f"GET {objects}", f"DELETE {objects}",
        f"GET {objects}/{{id}}", f"DELETE {objects}/{{id}}",
        f"PUT {objects}/{{id}}/contacts/{{contact_id}}",
        f"DELETE {objects}/{{id}}/contacts/{{contact_id}}",
        f"PUT {objects}/{{id}}/conversations/{{conversation_id}}",
        f"DELETE {objects}/{{id}}/conversations/{{conversation_id}}",
        f"GET {object_types}", f"POST {object_types}", f"GET {object_types}/{{identifier}}",
        f"PATCH {object_types}/{{identifier}}", f"DELETE {object_types}/{{identifier}}",
        f"POST {conversations}/convert", "GET /api/v1/ticket_types", "POST /api/v1/ticket_types",
        f"GET {ticket_types}", f"PUT {ticket_types}", f"POST {ticket_types}/attributes",
        f"PUT {ticket_types}/attributes/{{attribute_id}}", "GET /api/v1/ticket_states",
        "GET /api/v1/tickets", "POST /api/v1/tickets", "GET /api/v1/tickets/{ticket_id}",
        "PUT /api/v1/tickets/{ticket_id}",
        *(f"GET {reports}/{view}" for view in ("overview", "totals", "series", "channels")),
        *(f"GET {reports}/{view}" for view in ("handover-reasons", "response-times")),
        *(f"GET {reports}/{view}" for view in ("agents", "csat", "conversations")),
        "GET /api/v1/reports/reconciliation",
        "GET /api/v1/teams", "POST /api/v1/teams", f"GET {teams}", f"PATCH {teams}",
        f"DELETE {teams}", f"PUT {teams}/members/{{agent_id}}",
        f"DELETE {teams}/members/{{agent_id}}", "GET /api/v1/team-queues",
        "GET /api/v1/me/presence", "PUT /api/v1/me/presence", f"PUT {agents}/capacity",
        "GET /api/v1/routing-rules", "POST /api/v1/routing-rules", f"GET {rules}",
        f"PATCH {rules}", f"DELETE {rules}", "POST /api/v1/routing-rules/preview",
        "GET /api/v1/webhooks", "POST /api/v1/webhooks", "DELETE /api/v1/webhooks/{endpoint_id}",
        "GET /api/v1/me/alerts", "PUT /api/v1/me/alerts",
        "GET /api/v1/sla-policies", "POST /api/v1/sla-policies", f"GET {policies}",
        f"PATCH {policies}", f"DELETE {policies}", f"GET {conversations}/sla",
    }  # fmt: skip
    assert ALL_OPERATIONS == expected
    admin_only = {op.ok().label for op in admin_schema.get_all_operations()}
    assert admin_only == {
        label
        for label in expected
        if label.split(" ")[1].startswith(
            (
                agents,
                object_types,
                f"{reports}/",
                "/api/v1/routing-rules/preview",
                "/api/v1/webhooks",
            )
        )
    }


def test_no_operation_streams() -> None:
    """A live stream (SSE) never ends, so it cannot be fuzzed: the document must not have one."""
    streaming = [
        f"{method.upper()} {path}"
        for path, operations in SCHEMA_DOCUMENT["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in operations.items()
        for response in operation.get("responses", {}).values()
        if "text/event-stream" in response.get("content", {})
    ]
    assert not streaming


def test_the_live_server_serves_the_schema_tested_here(server: LiveServer) -> None:
    served = httpx.get(f"{server.base_url}/openapi.json")
    assert served.status_code == 200
    assert served.json() == SCHEMA_DOCUMENT
