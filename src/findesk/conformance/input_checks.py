"""Bad input on every operation: wrong types, missing required fields, unknown enum values.

Each of the nine operations gets one check that sends every case below: each must be refused
with a 4xx other than 401/403 (required; findesk's exact answer, 422, is recommended), and after
each refused write the object is read again and must be unchanged (a refused create must not
have created anything: a valid create with the same ``object_id`` is not the refused one).
Rest-variant reads take their input in the query string, where there are no types: there, only
missing fields are sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from findesk.conformance.checks import (
    Context,
    Exchange,
    Failed,
    Json,
    Skipped,
    check,
    evidence,
    expect_client_error,
    expect_created,
    expect_status,
    initial_message,
    unique,
)
from findesk.fin_api.client import Reply

# operation -> (REST method, REST path)
ROUTES: dict[str, tuple[str, str]] = {
    "get_user": ("GET", "/user"),
    "update_user": ("PUT", "/user"),
    "create_user": ("POST", "/user"),
    "get_agents": ("GET", "/agents"),
    "get_conversation": ("GET", "/conversation"),
    "update_conversation": ("PUT", "/conversation"),
    "create_conversation": ("POST", "/conversation"),
    "get_messages": ("GET", "/messages"),
    "create_message": ("POST", "/messages"),
}
INVALID = 422  # findesk's answer to invalid input (spec 4.8)
READ_AT = "2025-10-27T14:30:00.000Z"


def send(ctx: Context, operation: str, payload: Json) -> Reply:
    """``payload`` sent to ``operation`` as Fin would, whatever it holds."""
    api = ctx.api
    method, path = ROUTES[operation]
    if ctx.config.variant == "posts-only":
        return api.reply(api.http.post(f"/{operation}", json=payload))
    if method == "GET":
        return api.reply(api.http.get(path, params=payload))
    return api.reply(api.http.request(method, path, json=payload))


def typed(ctx: Context) -> bool:
    """Whether a read's input has JSON types (posts-only) rather than a query string."""
    return ctx.config.variant == "posts-only"


@dataclass(frozen=True)
class Case:
    what: str
    payload: Json
    status: int = INVALID  # findesk's answer (recommended)


class Findings:
    """Collects every case's failure so that one bad case does not hide the others."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, Exchange | None]] = []

    def refused(self, reply: Reply, case: Case) -> bool:
        try:
            expect_client_error(reply, case.what, case.status)
        except Failed as failure:
            self.problems.append((failure.reason, failure.exchange))
            return False
        return True

    def expect(self, condition: bool, reason: str, reply: Reply) -> None:
        if not condition:
            self.problems.append((reason, evidence(reply)))

    def done(self) -> None:
        if self.problems:
            reason = "; ".join(dict.fromkeys(reason for reason, _ in self.problems))
            raise Failed(reason, self.problems[0][1])


def _each(
    ctx: Context,
    operation: str,
    cases: list[Case],
    reread: Callable[[], Reply] | None = None,
    after: Callable[[Case], None] | None = None,
) -> None:
    """Send each case; each must be refused; ``reread`` must answer the same before and after
    each refused write; ``after`` checks what else a refused case must not have done."""
    findings = Findings()
    before = reread() if reread is not None else None
    for case in cases:
        reply = send(ctx, operation, case.payload)
        if not findings.refused(reply, case):
            continue
        if reread is not None and before is not None:
            now = reread()
            findings.expect(
                now.status == before.status and now.data == before.data,
                f"{case.what}: refused, but the object changed",
                now,
            )
        if after is not None:
            try:
                after(case)
            except Failed as failure:
                findings.problems.append((failure.reason, failure.exchange))
    findings.done()


# --- users ------------------------------------------------------------------------------------


@check("input.get_user", "Get user with a missing or mistyped user_id is 422")
def input_get_user(ctx: Context) -> None:
    cases = [Case("missing user_id", {})]
    if typed(ctx):
        cases.append(Case("user_id an array", {"user_id": ["x"]}))
    _each(ctx, "get_user", cases)


@check("input.update_user", "Update user with bad input is 422 and changes nothing")
def input_update_user(ctx: Context) -> None:
    user = ctx.new_user(email="bad-input@example.com", attributes={"keep": 1})
    uid = user["id"]
    cases = [
        Case("missing user_id", {"attributes": {"a": 1}}),
        Case("user_id an object", {"user_id": {"id": uid}, "attributes": {"a": 1}}),
        Case("attributes a string", {"user_id": uid, "attributes": "not-an-object"}),
        Case("email an array", {"user_id": uid, "email": ["x@example.com"]}),
        Case("name an object", {"user_id": uid, "name": {"first": "x"}}),
    ]
    _each(ctx, "update_user", cases, lambda: ctx.api.get_user(str(uid)))


@check("input.create_user", "Create user with bad input is 422 and creates nothing")
def input_create_user(ctx: Context) -> None:
    object_ids: dict[str, str] = {}

    def case(what: str, **fields: Any) -> Case:
        object_ids[what] = unique("u")
        return Case(what, {"object_id": object_ids[what], "name": "Refused", **fields})

    cases = [
        Case("missing object_id", {"name": "Refused"}),
        Case("object_id an object", {"object_id": {"id": "x"}, "name": "Refused"}),
        case("attributes a string", attributes="not-an-object"),
        case("email a number", email=42),
        case("name an array", name=["Refused"]),
    ]

    def nothing_created(refused: Case) -> None:
        object_id = object_ids.get(refused.what)
        if object_id is None:
            return
        reply = ctx.api.create_user(object_id=object_id, name="Valid")
        expect_created(reply, what=f"{refused.what}: a valid create with its object_id")
        name = reply.data.get("name", "Valid") if isinstance(reply.data, dict) else None
        if name != "Valid":
            raise Failed(f"{refused.what}: refused, but a user was created", evidence(reply))

    _each(ctx, "create_user", cases, after=nothing_created)


# --- agents -----------------------------------------------------------------------------------


@check("input.get_agents", "Get agents with a body that is not an object is 422")
def input_get_agents(ctx: Context) -> None:
    if not typed(ctx):
        raise Skipped("GET /agents takes no input in the rest variant: nothing can be bad")
    _each(ctx, "get_agents", [Case("body an array", ["x"]), Case("body a string", "x")])


# --- conversations ----------------------------------------------------------------------------


@check("input.get_conversation", "Get conversation with a missing or mistyped id is 422")
def input_get_conversation(ctx: Context) -> None:
    cases = [Case("missing conversation_id", {})]
    if typed(ctx):
        cases.append(Case("conversation_id an array", {"conversation_id": ["x"]}))
    _each(ctx, "get_conversation", cases)


@check(
    "input.update_conversation",
    "Update conversation with bad input is 422 and changes nothing",
)
def input_update_conversation(ctx: Context) -> None:
    conversation, _ = ctx.start_conversation()
    cid = conversation["id"]
    cases = [
        Case("missing conversation_id", {"title": "Refused"}),
        Case("conversation_id an object", {"conversation_id": {"id": cid}, "title": "Refused"}),
        Case("status outside the enum", {"conversation_id": cid, "status": "snoozed"}),
        Case("title an array", {"conversation_id": cid, "title": ["Refused"]}),
        Case("tags a string", {"conversation_id": cid, "tags": "refused"}),
        Case("tags of numbers", {"conversation_id": cid, "tags": [1, 2]}),
        Case("attributes a string", {"conversation_id": cid, "attributes": "refused"}),
        Case("assignee_id an object", {"conversation_id": cid, "assignee_id": {"id": "x"}}),
        Case("last_user_read_at not a time", {"conversation_id": cid, "last_user_read_at": "x"}),
    ]
    _each(ctx, "update_conversation", cases, lambda: ctx.api.get_conversation(str(cid)))


@check(
    "input.last_user_read_at",
    "last_user_read_at: a valid timestamp is accepted, a malformed one is 422 and changes nothing",
)
def input_last_user_read_at(ctx: Context) -> None:
    conversation, _ = ctx.start_conversation()
    cid = str(conversation["id"])
    reply = ctx.api.update_conversation(cid, last_user_read_at=READ_AT)
    expect_status(reply, 200, what=f"last_user_read_at {READ_AT!r}")
    cases = [
        Case(f"last_user_read_at {bad!r}", {"conversation_id": cid, "last_user_read_at": bad})
        for bad in ("yesterday", "2025-13-45T99:00:00Z", 1761575400.5, {"at": READ_AT})
    ]
    _each(ctx, "update_conversation", cases, lambda: ctx.api.get_conversation(cid))


@check(
    "input.create_conversation",
    "Create conversation with bad input is 422 and creates nothing",
)
def input_create_conversation(ctx: Context) -> None:
    uid = str(ctx.user["id"])
    object_ids: dict[str, str] = {}

    def case(what: str, drop: str = "", **fields: Any) -> Case:
        object_ids[what] = unique("c")
        payload: dict[str, Any] = {
            "title": "Refused",
            "user_id": uid,
            "object_id": object_ids[what],
            "initial_message": initial_message(uid, "<p>Refused</p>"),
            **fields,
        }
        payload.pop(drop, None)
        return Case(what, payload)

    message = initial_message(uid, "<p>Refused</p>")
    cases = [
        case("missing user_id", drop="user_id"),
        case("missing initial_message", drop="initial_message"),
        Case("missing object_id", {"user_id": uid, "initial_message": message}),
        case("user_id an array", user_id=[uid]),
        case("initial_message a string", initial_message="<p>Refused</p>"),
        case("initial_message.visibility outside the enum",
             initial_message={**message, "visibility": "everyone"}),
        case("initial_message.author.user_type outside the enum",
             initial_message={**message, "author": {"id": uid, "user_type": "robot"}}),
        case("title an object", title={"text": "Refused"}),
    ]  # fmt: skip

    def nothing_created(refused: Case) -> None:
        object_id = object_ids.get(refused.what)
        if object_id is None:
            return
        reply = ctx.api.create_conversation(
            title="Valid",
            user_id=uid,
            object_id=object_id,
            initial_message=initial_message(uid, "<p>Valid</p>"),
        )
        expect_created(reply, what=f"{refused.what}: a valid create with its object_id")
        data = reply.data if isinstance(reply.data, dict) else {}
        conversation = data.get("conversation") or {}
        first = data.get("initial_message") or {}
        if conversation.get("title", "Valid") != "Valid" or "Refused" in str(first.get("body")):
            raise Failed(
                f"{refused.what}: refused, but a conversation was created", evidence(reply)
            )

    _each(ctx, "create_conversation", cases, after=nothing_created)


# --- messages ---------------------------------------------------------------------------------


@check("input.get_messages", "Get messages with a missing or mistyped input is 422")
def input_get_messages(ctx: Context) -> None:
    conversation, _ = ctx.start_conversation()
    cases = [Case("missing conversation_id", {"after_id": "x"})]
    if typed(ctx):
        cases += [
            Case("conversation_id an array", {"conversation_id": [conversation["id"]]}),
            Case("after_id an object", {"conversation_id": conversation["id"], "after_id": {}}),
        ]
    _each(ctx, "get_messages", cases)


@check("input.create_message", "Create message with bad input is 422 and adds nothing")
def input_create_message(ctx: Context) -> None:
    conversation, _ = ctx.start_conversation()
    cid = str(conversation["id"])
    valid: dict[str, Any] = {
        "conversation_id": conversation["id"],
        "message_type": "comment",
        "body": "<p>Refused</p>",
        "author": {"id": conversation["user"]["id"], "user_type": "end_user"},
        "visibility": "public",
        "attachments": [],
    }

    def case(what: str, drop: str = "", **fields: Any) -> Case:
        payload = {**valid, "object_id": unique("m"), **fields}
        payload.pop(drop, None)
        return Case(what, payload)

    cases = [
        case("missing conversation_id", drop="conversation_id"),
        case("missing author", drop="author"),
        case("missing object_id", drop="object_id"),
        case("message_type outside the enum", message_type="note"),
        case("visibility outside the enum", visibility="everyone"),
        case("author.user_type outside the enum",
             author={"id": conversation["user"]["id"], "user_type": "robot"}),
        case("author a string", author="someone"),
        case("body an object", body={"html": "<p>Refused</p>"}),
        case("attachments a string", attachments="https://example.com/a.pdf"),
        case("attachments without url", attachments=[{"filename": "a.pdf"}]),
    ]  # fmt: skip
    _each(ctx, "create_message", cases, lambda: ctx.api.get_messages(cid))
