"""Schemathesis over the Fin API (both variants) and the OAuth endpoints, against a live server.

The schema is the app's own OpenAPI document (the live server serves the same, checked below);
every request goes over loopback to the `server` fixture, on SQLite and on PostgreSQL.

* `test_fin_api_conforms_to_its_schema`: every operation of both variants and `/oauth/token`,
  `/oauth/revoke`, with a valid bearer token: no 5xx, only documented status codes and content
  types, bodies that match the response schemas, schema-valid data accepted and invalid data
  rejected, and (`ignored_auth`) a 2xx turns into a 401/403 without or with a bad token.
  Positive cases sometimes get the ids of seeded objects, so success paths run, not only 404/422.
* `test_fin_api_refuses_calls_without_a_valid_token`: every Fin API operation answers a call
  without a token, or with a bogus, expired, revoked or wrong-kind token, with a documented 401
  and `WWW-Authenticate: Bearer ...`, whatever the rest of the request.

Bounded and repeatable: a fixed number of examples per operation, derandomized, no example
database.
"""

from __future__ import annotations

import base64
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
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

from findesk.app import create_app
from findesk.auth.service import issue_access_token, revoke_access_token
from findesk.kit.db import Database
from findesk.kit.html import is_blank, sanitize
from findesk.kit.settings import Settings

MAX_EXAMPLES = 40  # fuzzing phase, per operation (the examples and coverage phases add their own)
AUTH_EXAMPLES = 10  # per operation, each sent with every kind of bad credentials
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
AUTH_CHECKS = CHECKS[:5]
CI_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _app_schema() -> dict[str, Any]:
    # Never connected: building the OpenAPI document needs no database.
    url = "sqlite:////nonexistent/findesk-openapi.db"
    db = Database(url)
    try:
        return create_app(Settings(database_url=url), db).openapi()
    finally:
        db.dispose()


def _config(phases: dict[str, Any] | None = None) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # A NUL character cannot be stored, and the API answers it with a 422 on purpose
            # (tests/fin_api/test_bad_input.py); valid data, as far as this run is concerned,
            # has none.
            "generation": {"deterministic": True, "database": "none", "allow-x00": False},
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
schema = schemathesis.openapi.from_dict(SCHEMA_DOCUMENT, config=_config()).include(
    path_regex=r"^/(api/fin|oauth)/"
)
auth_schema = schemathesis.openapi.from_dict(
    SCHEMA_DOCUMENT,
    config=_config({"examples": {"enabled": False}, "coverage": {"enabled": False}}),
).include(path_regex=r"^/api/fin/")
FIN_OPERATIONS = {op.ok().label for op in auth_schema.get_all_operations()}
ALL_OPERATIONS = {op.ok().label for op in schema.get_all_operations()}


@dataclass
class Seeded:
    """Objects that exist on the server under test, and what the run saw."""

    base_url: str
    token: str
    client_id: str
    client_secret: str
    # Another client for fuzzing /oauth/*: it is issued many tokens, and a client keeps only the
    # newest FINDESK_OAUTH_MAX_LIVE_TOKENS, so the token above must not be one of its.
    fuzzed_client_id: str
    fuzzed_client_secret: str
    fin_agent_id: str
    user_id: str
    conversation_id: str
    message_id: str
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))


# The seeded objects of the server under test (one backend at a time), for the hook below.
CURRENT: dict[str, Seeded] = {}


@pytest.fixture(scope="module")
def seeded(server: LiveServer) -> Iterator[Seeded]:
    client_id, secret = server.new_oauth_client("schemathesis")
    token = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    ).json()["access_token"]
    with httpx.Client(
        base_url=f"{server.base_url}/api/fin", headers={"Authorization": f"Bearer {token}"}
    ) as fin:
        user = fin.post("/user", json={"object_id": f"u-{uuid.uuid4().hex}", "name": "Seed"})
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]
        created = fin.post(
            "/conversation",
            json={
                "user_id": user_id,
                "object_id": f"c-{uuid.uuid4().hex}",
                "initial_message": {
                    "body": "<p>Hi</p>",
                    "author": {"id": user_id, "user_type": "end_user"},
                    "object_id": f"m-{uuid.uuid4().hex}",
                },
            },
        )
        assert created.status_code == 201, created.text
    fuzzed_client_id, fuzzed_secret = server.new_oauth_client("schemathesis-token-endpoint")
    CURRENT["seeded"] = Seeded(
        base_url=server.base_url,
        token=token,
        client_id=client_id,
        client_secret=secret,
        fuzzed_client_id=fuzzed_client_id,
        fuzzed_client_secret=fuzzed_secret,
        fin_agent_id=server.fin_agent_id,
        user_id=user_id,
        conversation_id=created.json()["conversation"]["id"],
        message_id=created.json()["initial_message"]["id"],
    )
    yield CURRENT["seeded"]
    CURRENT.clear()


def flatmap_case(context: schemathesis.HookContext, case: Case) -> st.SearchStrategy[Case]:
    """Fuzzing: point some ids of positive cases at objects that exist, so 2xx paths are reached."""
    seeded = CURRENT.get("seeded")
    if seeded is None or case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return st.just(case)

    @st.composite
    def rewrite(draw: st.DrawFn) -> Case:
        _with_known_ids(case, seeded, draw)
        return case

    return rewrite()


schema.hook(flatmap_case)
auth_schema.hook(flatmap_case)

MESSAGE_BODIES = st.sampled_from(
    ["<p>Hello!</p>", "Plain text", '<p><b>Bold</b> <a href="https://example.com/a">link</a></p>']
)


def _with_known_ids(case: Case, seeded: Seeded, draw: st.DrawFn) -> None:
    coin = st.sampled_from([True, True, False])  # mostly the known id; True is the simplest
    if case.operation.path.startswith("/oauth/"):
        if isinstance(case.body, dict) and draw(coin):
            case.body["client_id"] = seeded.fuzzed_client_id
            case.body["client_secret"] = seeded.fuzzed_client_secret
        return
    for container in (case.query, case.body):
        if not isinstance(container, dict):
            continue
        if "user_id" in container and draw(coin):
            container["user_id"] = seeded.user_id
        if "conversation_id" in container and draw(coin):
            container["conversation_id"] = seeded.conversation_id
        if container.get("after_id") is not None and draw(coin):
            container["after_id"] = seeded.message_id
        if container.get("assignee_id") is not None and draw(coin):
            container["assignee_id"] = seeded.fin_agent_id
    # A message into a conversation (or for a user) that exists must also pass the rules the
    # schema cannot express (spec 4.3, an end-user author is the conversation's user), or it
    # is rightly a 422.
    body = case.body if isinstance(case.body, dict) else {}
    if "initial_message" in body:
        message, exists = body["initial_message"], body.get("user_id") == seeded.user_id
    else:
        message, exists = body, body.get("conversation_id") == seeded.conversation_id
    if exists and isinstance(message, dict) and "author" in message:
        message["author"] = draw(
            st.sampled_from(
                [
                    {"id": seeded.user_id, "user_type": "end_user"},
                    {"id": seeded.fin_agent_id, "user_type": "agent"},
                ]
            )
        )
        text = message.get("body")
        if not message.get("attachments") and is_blank(sanitize(text) if text else None):
            message["body"] = draw(MESSAGE_BODIES)


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
def test_fin_api_conforms_to_its_schema(case: Case, seeded: Seeded) -> None:
    headers = {}
    if case.operation.path.startswith("/api/fin/"):
        headers["Authorization"] = f"Bearer {seeded.token}"
    case.call_and_validate(
        base_url=seeded.base_url,
        headers=headers,
        checks=[getattr(schemathesis.checks, name) for name in CHECKS],
    )


@pytest.fixture(scope="module")
def bad_credentials(server: LiveServer, seeded: Seeded) -> dict[str, str | None]:
    """Authorization header values that must all be refused (None: no header at all)."""
    client_id, secret = server.new_oauth_client("schemathesis-bad-credentials")
    # Issued and revoked in the database: the fuzzing's wrong credentials, from this address,
    # may have the token endpoint make it wait by now (findesk.throttle).
    with server.db.transaction() as session:
        expired, _ = issue_access_token(session, client_id, secret, ttl_seconds=-1)
        revoked, _ = issue_access_token(session, client_id, secret, ttl_seconds=3600)
        revoke_access_token(session, revoked)
    _, agent_token = server.new_agent(f"schemathesis-{uuid.uuid4().hex[:8]}@example.com")
    basic = base64.b64encode(f"{seeded.client_id}:{seeded.client_secret}".encode()).decode()
    return {
        "none": None,
        "bogus": f"Bearer fat_{uuid.uuid4().hex}",
        "empty bearer": "Bearer ",
        "expired": f"Bearer {expired}",
        "revoked": f"Bearer {revoked}",
        "agent token": f"Bearer {agent_token}",
        "client credentials as Basic": f"Basic {basic}",
        "token without scheme": seeded.token,
    }


@auth_schema.parametrize()
@settings(CI_SETTINGS, max_examples=AUTH_EXAMPLES)
def test_fin_api_refuses_calls_without_a_valid_token(
    case: Case, seeded: Seeded, bad_credentials: dict[str, str | None]
) -> None:
    if case.headers:
        # Generated security parameters: this test sends its own (or none).
        case.headers.pop("Authorization", None)
    for kind, authorization in bad_credentials.items():
        headers = {} if authorization is None else {"Authorization": authorization}
        response = case.call(base_url=seeded.base_url, headers=headers)
        assert response.status_code == 401, (kind, response.status_code, response.text)
        challenge = response.headers.get("www-authenticate", [""])[0]
        assert challenge.startswith("Bearer "), (kind, challenge)
        case.validate_response(
            response,
            checks=[getattr(schemathesis.checks, name) for name in AUTH_CHECKS],
            headers=headers,
        )


def test_fuzzing_reached_success_paths(seeded: Seeded) -> None:
    """Ids of seeded objects made it into the requests: every operation answered a 2xx."""
    if not seeded.statuses:
        pytest.skip("test_fin_api_conforms_to_its_schema did not run for this backend")
    without_success = sorted(
        label
        for label in ALL_OPERATIONS
        if not any(200 <= status < 300 for status in seeded.statuses[label])
    )
    assert not without_success, {label: dict(seeded.statuses[label]) for label in without_success}


def test_every_operation_of_the_contract_is_fuzzed() -> None:
    """Spec section 2: nine operations in two variants, plus the token endpoints."""
    rest = {
        "GET /api/fin/user", "PUT /api/fin/user", "POST /api/fin/user", "GET /api/fin/agents",
        "GET /api/fin/conversation", "PUT /api/fin/conversation", "POST /api/fin/conversation",
        "GET /api/fin/messages", "POST /api/fin/messages",
    }  # fmt: skip
    posts_only = {
        f"POST /api/fin/{name}"
        for name in (
            "get_user", "update_user", "create_user", "get_agents", "get_conversation",
            "update_conversation", "create_conversation", "get_messages", "create_message",
        )
    }  # fmt: skip
    assert rest | posts_only == FIN_OPERATIONS
    assert rest | posts_only | {"POST /oauth/token", "POST /oauth/revoke"} == ALL_OPERATIONS


def test_the_live_server_serves_the_schema_tested_here(server: LiveServer) -> None:
    served = httpx.get(f"{server.base_url}/openapi.json")
    assert served.status_code == 200
    assert served.json() == SCHEMA_DOCUMENT
