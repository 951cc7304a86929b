"""Lookups: one function per action. Services never commit.

An administrator defines a lookup (``create_lookup``): a read of findesk's data with its inputs,
the fields it returns (some masked), whether it answers only about the end user the
conversation is with, a rate limit. Fin calls it as a Data Connector (``answer_call``, behind
``GET /api/connectors/{lookup_id}``); every call is recorded, answered or refused, and one made
for a conversation is told in that conversation's timeline ("Fin looked up order A-1042:
shipped"). Fin is never notified through the outbox of its own lookups: nothing it reads changed.

``lookups.intercom`` publishes them to Intercom as Data Connectors through ``connector_definitions``
and ``issue_token``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.audit import service as audit
from findesk.audit.service import AuditActor
from findesk.connectors.schemas import ConnectorDefinition
from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.kit.actor import FIN
from findesk.kit.errors import Forbidden, Invalid, NotFound
from findesk.kit.periodic import EveryPerKey
from findesk.kit.secrets import hash_secret, new_secret, secret_matches
from findesk.kit.timeutil import isoformat, utcnow
from findesk.live import service as live
from findesk.lookups import repository
from findesk.lookups.models import Lookup, LookupToken
from findesk.lookups.schemas import (
    ATTRIBUTE_MATCHES_MAX,
    CONTEXT_VARIABLES,
    INPUT_VALUE_MAX,
    TICKET_FIELDS,
    LookupIn,
)
from findesk.objects.models import ObjectInstance, ObjectType
from findesk.tickets.models import TITLE, Ticket
from findesk.users import repository as user_repository

TOKEN_PREFIX = "flk"  # noqa: S105 (the prefix of a lookup token's secret)
PATH = "/api/connectors"
WINDOW = timedelta(minutes=1)
# Far from its limit a lookup's callers count the calls without waiting for one another; within
# this many calls of it they take the lookup's row lock in turn, so that concurrent callers (of
# every process) cannot all slip past the last free call.
RATE_SLACK = 64
TOKEN_TOUCH_EVERY = timedelta(minutes=1)
TIMELINE_KIND = "lookup"  # the history and live-feed kind of a call told in a conversation
SUMMARY_MAX = 200
TICKETS_MAX = 20
LAST_CALLS_LISTED = 3
OBJECT_KINDS = ("object_by_external_id", "object_by_attribute")
# Whether a lookup's old call records are due to be pruned (they ride along with its calls).
_prune_due = EveryPerKey(3600).due
# Which object attribute types an input of each type may be compared with.
COMPARABLE = {
    "string": ("string", "date", "datetime", "decimal"),
    "integer": ("integer",),
    "decimal": ("decimal",),
    "boolean": ("boolean",),
}
_INTEGER = re.compile(r"^-?\d{1,18}$")
_DECIMAL = re.compile(r"^-?\d{1,20}(\.\d{1,10})?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _require_admin(agent: Agent) -> None:
    if agent.role != "admin":
        raise Forbidden("Only administrators may manage lookups.")


def _invalid(message: str, field_name: str) -> Invalid:
    return Invalid(message, errors=[{"field": field_name, "message": message}])


# --- definitions ------------------------------------------------------------------------------


def list_lookups(session: Session, agent: Agent) -> list[Lookup]:
    _require_admin(agent)
    return list(repository.list_lookups(session))


def get_lookup(session: Session, agent: Agent, lookup_id: str) -> Lookup:
    _require_admin(agent)
    found = repository.get(session, lookup_id)
    if found is None:
        raise NotFound(f"No lookup with id {lookup_id!r}.")
    return found


def object_type_of(session: Session, lookup: Lookup) -> ObjectType | None:
    if lookup.object_type_id is None:
        return None
    return repository.object_type(session, lookup.object_type_id)


def _checked(session: Session, body: LookupIn, current: Lookup | None) -> dict[str, Any]:
    """The columns of a valid definition, or the first thing wrong with it, said plainly."""
    other = repository.by_name(session, body.name)
    if other is not None and (current is None or other.id != current.id):
        raise _invalid(f"A lookup named {body.name!r} exists already.", "name")
    names = [i.name for i in body.inputs]
    if len(set(names)) != len(names):
        raise _invalid("Two inputs have the same name.", "inputs")
    for name in names:
        if name in CONTEXT_VARIABLES:
            raise _invalid(
                f"An input may not be named {name!r}: findesk passes it to every call.", "inputs"
            )
    field_names = [f.name for f in body.fields]
    if len(set(field_names)) != len(field_names):
        raise _invalid("Two fields have the same name.", "fields")
    object_type: ObjectType | None = None
    attribute: str | None = None
    if body.kind in OBJECT_KINDS:
        if not body.object_type:
            raise _invalid("Choose the object type this lookup reads.", "object_type")
        object_type = repository.object_type_by_identifier(session, body.object_type)
        if object_type is None:
            raise _invalid(f"There is no object type {body.object_type!r}.", "object_type")
        if len(body.inputs) != 1:
            raise _invalid(
                "This kind takes exactly one input: the value to look for (e.g. order_id).",
                "inputs",
            )
        key = body.inputs[0]
        if not key.required:
            raise _invalid(f"The input {key.name!r} is what is looked for: it must be required.",
                           "inputs")  # fmt: skip
        types = {a["name"]: a["type"] for a in object_type.attributes}
        if body.kind == "object_by_attribute":
            if not body.attribute:
                raise _invalid("Choose the attribute compared with the input.", "attribute")
            if body.attribute not in types:
                raise _invalid(
                    f"The type {object_type.identifier} has no attribute {body.attribute!r}.",
                    "attribute",
                )
            if types[body.attribute] not in COMPARABLE[key.type]:
                raise _invalid(
                    f"The attribute {body.attribute!r} is a {types[body.attribute]}: an input "
                    f"of type {key.type} cannot be compared with it.",
                    "inputs",
                )
            attribute = body.attribute
        elif key.type not in ("string", "integer"):
            raise _invalid("An external id is looked for as a string or an integer.", "inputs")
        for name in field_names:
            if name not in types:
                raise _invalid(
                    f"The type {object_type.identifier} has no attribute {name!r} to return.",
                    "fields",
                )
    else:
        if body.inputs:
            raise _invalid(
                "This kind takes no inputs: it reads the user_id or conversation_id that "
                "every call carries.",
                "inputs",
            )
        for name in field_names:
            if name not in TICKET_FIELDS:
                raise _invalid(
                    f"A ticket has no field {name!r}: choose among {', '.join(TICKET_FIELDS)}.",
                    "fields",
                )
    if body.summary_field is not None and body.summary_field not in field_names:
        raise _invalid(
            f"The summary field {body.summary_field!r} is not one of the fields returned.",
            "summary_field",
        )
    return {
        "name": body.name,
        "description": body.description,
        "kind": body.kind,
        "object_type_id": object_type.id if object_type is not None else None,
        "attribute": attribute,
        "inputs": [i.model_dump() for i in body.inputs],
        "fields": [f.model_dump() for f in body.fields],
        "summary_field": body.summary_field,
        # The end user's open tickets are always the end user's own.
        "user_scoped": True if body.kind == "user_open_tickets" else body.user_scoped,
        "direct_fin_usage": body.direct_fin_usage,
        "audiences": sorted(set(body.audiences)),
        "rate_limit_per_minute": body.rate_limit_per_minute,
        "enabled": body.enabled,
    }


def create_lookup(session: Session, agent: Agent, body: LookupIn) -> Lookup:
    _require_admin(agent)
    lookup = Lookup(**_checked(session, body, None))
    session.add(lookup)
    session.flush()
    return lookup


def update_lookup(session: Session, agent: Agent, lookup_id: str, body: LookupIn) -> Lookup:
    lookup = get_lookup(session, agent, lookup_id)
    for name, value in _checked(session, body, lookup).items():
        setattr(lookup, name, value)
    lookup.updated_at = utcnow()
    return lookup


def set_enabled(session: Session, agent: Agent, lookup_id: str, enabled: bool) -> Lookup:
    lookup = get_lookup(session, agent, lookup_id)
    lookup.enabled = enabled
    lookup.updated_at = utcnow()
    return lookup


def delete_lookup(session: Session, agent: Agent, lookup_id: str) -> None:
    """The lookup, its tokens and its recorded calls (the timelines keep their sentences)."""
    repository.delete_lookup(session, get_lookup(session, agent, lookup_id))


def as_form(lookup: Lookup, object_type: ObjectType | None) -> LookupIn:
    """The definition as ``LookupIn`` (to edit it)."""
    return LookupIn.model_validate(
        {
            "name": lookup.name,
            "description": lookup.description or "-",
            "kind": lookup.kind,
            "object_type": object_type.identifier if object_type is not None else None,
            "attribute": lookup.attribute,
            "inputs": lookup.inputs,
            "fields": lookup.fields,
            "summary_field": lookup.summary_field,
            "user_scoped": lookup.user_scoped,
            "direct_fin_usage": lookup.direct_fin_usage,
            "audiences": lookup.audiences or ["users"],
            "rate_limit_per_minute": lookup.rate_limit_per_minute,
            "enabled": lookup.enabled,
        }
    )


# --- tokens -----------------------------------------------------------------------------------


def issue_token(
    session: Session, lookup_id: str, label: str, *, actor: AuditActor | None = None
) -> tuple[str, str]:
    """A new bearer token for the lookup: (token id, plain token). Only its hash is kept: the
    plain token exists now only. The audit log records it (``actor`` None: findesk itself)."""
    lookup = repository.get(session, lookup_id)
    if lookup is None:
        raise NotFound(f"No lookup with id {lookup_id!r}.")
    label = _CONTROL.sub("", label).strip()[:255] or "token"
    plain = new_secret(TOKEN_PREFIX)
    token = LookupToken(
        lookup_id=lookup_id, label=label, token_hash=hash_secret(plain), hint=plain[-4:]
    )
    session.add(token)
    session.flush()
    audit.record(session, actor, "lookup_token.issued", "lookup_token", token.id,
                 {"lookup_id": lookup.id, "lookup": lookup.name, "label": label})  # fmt: skip
    return token.id, plain


def revoke_token(session: Session, token_id: str, *, actor: AuditActor | None = None) -> None:
    """The token stops working at once; again: no change."""
    token = repository.token(session, token_id)
    if token is None:
        raise NotFound(f"No lookup token with id {token_id!r}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "lookup_token.revoked", "lookup_token", token.id,
                     {"lookup_id": token.lookup_id, "label": token.label})  # fmt: skip


def tokens_of(session: Session, lookup_id: str) -> list[LookupToken]:
    return list(repository.tokens_of(session, lookup_id))


# --- what Intercom is told --------------------------------------------------------------------


def url_template(base_url: str, lookup: Lookup) -> str:
    """The URL a Data Connector calls: every input, then the two context variables, each a
    ``{{name}}`` template that Intercom fills in, e.g.
    ``{base}/api/connectors/lkp_…?order_id={{order_id}}&user_id={{user_id}}&conversation_id={{conversation_id}}``."""
    names = [str(i["name"]) for i in lookup.inputs] + list(CONTEXT_VARIABLES)
    query = "&".join(f"{name}={{{{{name}}}}}" for name in names)
    return f"{base_url.rstrip('/')}{PATH}/{quote(lookup.id)}?{query}"


def _sample(field_name: str, attribute_type: str | None) -> Any:
    if attribute_type in ("integer",) or field_name == "ticket_id":
        return 1042 if field_name != "ticket_id" else "12"
    if attribute_type == "boolean" or field_name == "open":
        return True
    if attribute_type == "decimal":
        return "19.90"
    if attribute_type in ("date",):
        return "2026-12-04"
    if attribute_type in ("datetime",) or field_name == "updated_at":
        return "2026-12-04T17:00:00.000Z"
    return f"sample {field_name}"


def mock_response(lookup: Lookup, object_type: ObjectType | None) -> dict[str, Any]:
    types = {a["name"]: a["type"] for a in (object_type.attributes if object_type else [])}
    item: dict[str, Any] = {}
    if lookup.kind in OBJECT_KINDS:
        item["id"] = "A-1042"
    for spec in lookup.fields:
        value = _sample(str(spec["name"]), types.get(str(spec["name"])))
        item[str(spec["name"])] = mask(value) if spec.get("redacted") else value
    return _found_body(lookup, object_type, [item])


def connector_definitions(session: Session, base_url: str) -> list[ConnectorDefinition]:
    """Every enabled lookup, as Intercom's Data Connectors API wants it."""
    definitions = []
    for lookup in repository.enabled_lookups(session):
        object_type = object_type_of(session, lookup)
        definitions.append(
            ConnectorDefinition(
                key=lookup.id,
                name=lookup.name,
                description=lookup.description,
                http_method="get",
                url=url_template(base_url, lookup),
                data_inputs=[
                    {
                        "name": i["name"],
                        "type": i["type"],
                        "description": i.get("description") or i["name"],
                        "required": bool(i.get("required", True)),
                    }
                    for i in lookup.inputs
                ],
                direct_fin_usage=lookup.direct_fin_usage,
                audiences=list(lookup.audiences),
                mock_response=mock_response(lookup, object_type),
            )
        )
    return definitions


# --- a call -----------------------------------------------------------------------------------


@dataclass
class CallAnswer:
    """What the endpoint answers: a status, a JSON body, headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(
        self, status: int, outcome: str, message: str, *, input_name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.message = message
        self.input_name = input_name
        self.headers = headers or {}

    def answer(self) -> CallAnswer:
        error: dict[str, Any] = {"code": self.outcome, "message": self.message}
        if self.input_name is not None:
            error["input"] = self.input_name
        return CallAnswer(self.status, {"error": error}, self.headers)


def mask(value: Any) -> str:
    """A redacted value: its last four characters show when it has eight or more (enough to
    recognise, not to use), stars otherwise."""
    text = "" if value is None else str(value)
    return "****" + text[-4:] if len(text) >= 8 else "****"


def result_key(object_type: ObjectType | None) -> str:
    """The key of a found object in the answer: the type's name in snake case (``Order`` →
    ``order``, ``Sales order`` and ``SalesOrder`` → ``sales_order``)."""
    name = object_type.name if object_type is not None else ""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")[:64] or "object"


def _found_body(
    lookup: Lookup, object_type: ObjectType | None, items: list[dict[str, Any]]
) -> dict[str, Any]:
    if not items:
        return {"found": False}
    if lookup.kind == "object_by_external_id":
        return {"found": True, result_key(object_type): items[0]}
    if lookup.kind == "object_by_attribute":
        return {"found": True, "type": result_key(object_type), "count": len(items),
                "results": items}  # fmt: skip
    if lookup.kind == "user_open_tickets":
        return {"found": True, "count": len(items), "tickets": items}
    return {"found": True, "ticket": items[0]}


def _parse(spec: Mapping[str, Any], raw: str) -> Any:
    name, kind = str(spec["name"]), str(spec["type"])
    if len(raw) > INPUT_VALUE_MAX or _CONTROL.search(raw):
        raise _Refused(400, "invalid_input", f"{name} is too long or holds control characters.",
                       input_name=name)  # fmt: skip
    if kind == "integer":
        if not _INTEGER.match(raw):
            raise _Refused(400, "invalid_input", f"{name} must be an integer, not {raw!r}.",
                           input_name=name)  # fmt: skip
        return int(raw)
    if kind == "decimal":
        if not _DECIMAL.match(raw):
            raise _Refused(400, "invalid_input", f"{name} must be a decimal number such as "
                           f"12.50, not {raw!r}.", input_name=name)  # fmt: skip
        return raw
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise _Refused(400, "invalid_input", f"{name} must be true or false, not {raw!r}.",
                           input_name=name)  # fmt: skip
        return raw.lower() == "true"
    return raw


def _given(params: Mapping[str, str], name: str) -> str:
    """The parameter's value; empty when absent, empty, or a template Intercom left unfilled
    (``{{user_id}}`` where it knows no user)."""
    raw = params.get(name, "")
    return "" if raw.startswith("{{") and raw.endswith("}}") else raw


def _inputs(lookup: Lookup, params: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in lookup.inputs:
        name = str(spec["name"])
        raw = _given(params, name)
        if raw == "":
            if spec.get("required", True):
                raise _Refused(400, "missing_input", f"{name} is required.", input_name=name)
            continue
        values[name] = _parse(spec, raw)
    return values


def _context(params: Mapping[str, str], name: str) -> str | None:
    raw = _given(params, name)
    if raw == "":
        return None
    if len(raw) > 40 or _CONTROL.search(raw):
        raise _Refused(400, "invalid_input", f"{name} is not an id of findesk's.", input_name=name)
    return raw


def _item(lookup: Lookup, values: Mapping[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    """Only the lookup's fields leave findesk; a redacted one masked."""
    item = dict(head)
    for spec in lookup.fields:
        name = str(spec["name"])
        value = values.get(name)
        item[name] = mask(value) if spec.get("redacted") and value is not None else value
    return item


def _object_item(lookup: Lookup, instance: ObjectInstance) -> dict[str, Any]:
    return _item(lookup, instance.custom_attributes or {}, {"id": instance.external_id})


def _ticket_item(lookup: Lookup, ticket: Ticket) -> dict[str, Any]:
    values = {
        "ticket_id": str(ticket.number),
        "type": ticket.ticket_type.name,
        "state": ticket.state.external_label,  # what the end user may be told
        "open": ticket.state.category != "resolved",
        "title": (ticket.attributes or {}).get(TITLE),
        "updated_at": isoformat(ticket.updated_at),
    }
    return _item(lookup, values, {})


def _summary_value(lookup: Lookup, item: Mapping[str, Any]) -> str | None:
    wanted = lookup.summary_field
    if wanted is None:
        plain = [f["name"] for f in lookup.fields if not f.get("redacted")]
        wanted = plain[0] if plain else None
    if wanted is None or item.get(wanted) is None:
        return None
    return str(item[wanted])


@dataclass
class _Result:
    items: list[dict[str, Any]]
    summary: str
    object_type: ObjectType | None = None


def _run(
    session: Session,
    lookup: Lookup,
    values: Mapping[str, Any],
    user_id: str | None,
    conversation_id: str | None,
) -> _Result:
    scope = user_id if lookup.user_scoped else None
    if lookup.kind in OBJECT_KINDS:
        object_type = object_type_of(session, lookup)
        if object_type is None:
            raise _Refused(404, "not_configured", "This lookup's object type was deleted.")
        label = object_type.name.lower()
        value = next(iter(values.values()))
        if lookup.kind == "object_by_external_id":
            subject = f"{label} {value}"
            instance = repository.instance_by_external_id(session, object_type.id, str(value))
            # Another user's object is not found: the same answer, so nothing leaks.
            if (
                instance is not None
                and scope is not None
                and not repository.user_is_linked(session, instance.id, scope)
                and not repository.user_is_linked(
                    session, instance.id, _current_user_id(session, scope)
                )
            ):
                instance = None
            if instance is None:
                return _Result([], f"{subject}: found nothing", object_type)
            item = _object_item(lookup, instance)
            shown = _summary_value(lookup, item)
            told = f"{subject}: {shown}" if shown is not None else subject
            return _Result([item], told, object_type)
        types = {a["name"]: a["type"] for a in object_type.attributes}
        attribute = str(lookup.attribute)
        found = repository.instances_by_attribute(
            session, object_type.id, attribute, types.get(attribute, "string"), value,
            user_id=_current_user_id(session, scope) if scope is not None else None,
            limit=ATTRIBUTE_MATCHES_MAX,
        )  # fmt: skip
        subject = f"{label} with {attribute} {value}"
        if not found:
            return _Result([], f"{subject}: found nothing", object_type)
        items = [_object_item(lookup, i) for i in found]
        return _Result(items, f"{subject}: {len(found)} found", object_type)
    if lookup.kind == "user_open_tickets":
        tickets = repository.open_tickets_of(
            session, _current_user_id(session, str(user_id)), TICKETS_MAX
        )
        if not tickets:
            return _Result([], "open tickets: found nothing")
        listed = ", ".join(f"#{t.number} {t.state.external_label}" for t in tickets[:3])
        return _Result([_ticket_item(lookup, t) for t in tickets],
                       f"open tickets: {len(tickets)} ({listed})")  # fmt: skip
    ticket = repository.ticket_of_conversation(session, str(conversation_id))
    if ticket is None:
        return _Result([], "the conversation's ticket: found nothing")
    return _Result([_ticket_item(lookup, ticket)],
                   f"ticket #{ticket.number}: {ticket.state.external_label}")  # fmt: skip


def _authenticate(session: Session, lookup: Lookup, authorization: str | None) -> LookupToken:
    scheme, _, plain = (authorization or "").partition(" ")
    plain = plain.strip()
    if scheme.lower() != "bearer" or not plain:
        raise _Refused(401, "unauthorized", "Send the lookup's token as Authorization: Bearer.",
                       headers={"WWW-Authenticate": 'Bearer realm="findesk"'})  # fmt: skip
    token = repository.token_by_hash(session, hash_secret(plain))
    if (
        token is None
        or token.lookup_id != lookup.id
        or token.revoked_at is not None
        or not secret_matches(plain, token.token_hash)
    ):
        raise _Refused(401, "unauthorized", "The token is not valid for this lookup.",
                       headers={"WWW-Authenticate": 'Bearer realm="findesk", '
                                'error="invalid_token"'})  # fmt: skip
    return token


def _check_rate(session: Session, lookup: Lookup, now: datetime) -> None:
    limit = lookup.rate_limit_per_minute
    since = now - WINDOW
    count = repository.counted_since(session, lookup.id, since, limit)
    if count >= limit - RATE_SLACK:
        repository.lock_lookup(session, lookup.id)
        count = repository.counted_since(session, lookup.id, since, limit)
    if count < limit:
        return
    oldest = repository.nth_newest_counted(session, lookup.id, since, limit)
    wait = (oldest + WINDOW - now).total_seconds() if oldest is not None else 1.0
    retry = max(1, math.ceil(wait))
    raise _Refused(
        429, "rate_limited",
        f"Over this lookup's limit of {limit} calls a minute; retry in {retry} s.",
        headers={"Retry-After": str(retry)},
    )  # fmt: skip


def _current_user_id(session: Session, user_id: str) -> str:
    """The end user's id now: Fin keeps the id of a visitor merged into a user since."""
    return user_repository.alias_target_id(session, "id", user_id) or user_id


def _check_scope(
    session: Session, lookup: Lookup, user_id: str | None, conversation_id: str | None
) -> None:
    if (lookup.user_scoped or lookup.kind == "user_open_tickets") and user_id is None:
        raise _Refused(400, "missing_input",
                       "user_id is required: this lookup answers about one end user.",
                       input_name="user_id")  # fmt: skip
    if lookup.kind == "conversation_ticket_state" and conversation_id is None:
        raise _Refused(400, "missing_input", "conversation_id is required.",
                       input_name="conversation_id")  # fmt: skip
    if conversation_id is not None:
        conversation = conversation_repository.get(session, conversation_id)
        if conversation is None or (
            user_id is not None and conversation.user_id != _current_user_id(session, user_id)
        ):
            # One refusal for both: whether the conversation exists is not told either.
            raise _Refused(403, "conversation_not_of_user",
                           "conversation_id is not a conversation of this end user.",
                           input_name="conversation_id")  # fmt: skip


def answer_call(
    session: Session,
    lookup_id: str,
    authorization: str | None,
    params: Mapping[str, str],
    *,
    keep_calls: timedelta,
    now: datetime | None = None,
) -> CallAnswer:
    """Answer one call of the lookup's endpoint and record it, whatever the answer; the
    lookup's records older than ``keep_calls`` go, at most once an hour a lookup in a process.
    Run it in a write transaction (the record is written in it)."""
    started = time.perf_counter()
    now = now or utcnow()
    lookup = repository.get(session, lookup_id)
    if lookup is None:
        # Not recorded: no lookup to file it under, and anyone could fill the table.
        return _Refused(404, "not_found", "No such lookup.").answer()
    recorded_inputs = {
        str(i["name"]): params.get(str(i["name"]), "")[:INPUT_VALUE_MAX]
        for i in lookup.inputs
        if str(i["name"]) in params
    }
    user_id = params.get("user_id") or None
    conversation_id = params.get("conversation_id") or None
    token: LookupToken | None = None
    counted = False
    timeline_conversation: str | None = None
    try:
        token = _authenticate(session, lookup, authorization)
        if not lookup.enabled:
            raise _Refused(404, "not_found", "This lookup is disabled.")
        _check_rate(session, lookup, now)
        counted = True
        values = _inputs(lookup, params)
        user_id = _context(params, "user_id")
        conversation_id = _context(params, "conversation_id")
        _check_scope(session, lookup, user_id, conversation_id)
        result = _run(session, lookup, values, user_id, conversation_id)
        answer = CallAnswer(200, _found_body(lookup, result.object_type, result.items))
        outcome = "found" if result.items else "not_found"
        summary = result.summary
        timeline_conversation = conversation_id
    except _Refused as refused:
        answer = refused.answer()
        outcome = refused.outcome
        summary = refused.message
    # The token's use is noted at most once a minute: a call a second does not write the same
    # row a second (on PostgreSQL every caller would queue on its lock).
    if token is not None and (
        token.last_used_at is None or token.last_used_at < now - TOKEN_TOUCH_EVERY
    ):
        token.last_used_at = now
    summary = summary[:SUMMARY_MAX]
    if _prune_due(lookup.id):
        repository.delete_calls_before(session, lookup.id, now - keep_calls)
    repository.add_call(
        session,
        lookup_id=lookup.id,
        token_id=token.id if token is not None else None,
        inputs=recorded_inputs,
        status_code=answer.status,
        outcome=outcome,
        counted=counted,
        duration_ms=round((time.perf_counter() - started) * 1000),
        conversation_id=(conversation_id or "")[:40] or None,
        user_id=(user_id or "")[:40] or None,
        summary=summary,
        at=now,
    )
    if timeline_conversation is not None:
        history.record(
            session,
            timeline_conversation,
            TIMELINE_KIND,
            FIN,
            to_value=outcome,
            detail={"summary": summary, "lookup_id": lookup.id, "lookup": lookup.name},
        )
        # For the inbox's live view only: Fin made it, and the outbox is not told.
        live.record(session, timeline_conversation, TIMELINE_KIND, FIN, None)
    return answer


# --- the admin pages' reads -------------------------------------------------------------------


@dataclass(frozen=True)
class LookupRow:
    lookup: Lookup
    object_type: ObjectType | None
    calls: int
    errors: int
    last_call_at: datetime | None
    last_calls: list[Any]


def overview(session: Session, agent: Agent, since: datetime) -> list[LookupRow]:
    """Every lookup with its calls and errors since ``since`` and its last call."""
    lookups = list_lookups(session, agent)
    stats = repository.call_stats(session, since)
    rows = []
    for lookup in lookups:
        calls, errors, last = stats.get(lookup.id, (0, 0, None))
        # Its last few calls: a read by the index (lookup_id, at) each (a team has a few).
        newest = list(repository.recent_calls(session, lookup.id, LAST_CALLS_LISTED))
        rows.append(LookupRow(lookup, object_type_of(session, lookup), calls, errors, last, newest))
    return rows


def recent_calls(session: Session, agent: Agent, lookup_id: str, limit: int = 50) -> list[Any]:
    get_lookup(session, agent, lookup_id)
    return list(repository.recent_calls(session, lookup_id, limit))
