"""Routing: when a conversation comes to wait for a person (Fin hands it over, or it is opened
with nobody assigned), the first enabled rule whose conditions all hold applies its actions, in
the same transaction as the change that triggered it: tags, priority, the team's queue, and a
member of the team if one is online with room (``teams.service.pick_member``). The history
records the rule that matched (``routed``) and each change it made.

This module registers itself with ``conversations.service.on_waiting`` when imported (the app
imports it through ``routing.endpoints``). Services never commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as default
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from findesk.audit import service as audit
from findesk.audit.service import AuditActor
from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit.actor import SYSTEM, Actor
from findesk.kit.errors import NotFound
from findesk.kit.text import invalid
from findesk.kit.timeutil import utcnow
from findesk.objects import repository as object_repository
from findesk.routing import repository
from findesk.routing.models import RoutingRule
from findesk.routing.schemas import Actions, Condition, RuleIn, RulePatch, TimeWindow
from findesk.teams import repository as team_repository
from findesk.teams import service as teams
from findesk.tickets import repository as ticket_repository
from findesk.tickets.models import DESCRIPTION, TITLE, Ticket

CHANNEL_ATTRIBUTE = "channel"
DEFAULT_CHANNEL = "messenger"  # a conversation Fin opened without saying (as the reports count)
USER_FIELDS = ("email", "name")  # the end user's own fields, besides their attributes
# ticket.title and ticket.description: the ticket's default attributes.
TICKET_ALIASES = {"title": TITLE, "description": DESCRIPTION}
TICKET_FIELDS = ("type", "state", *TICKET_ALIASES)
OBJECT_FIELDS = ("external_id",)  # an instance's own field, besides its type's attributes


# --- evaluating -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedTicket:
    """What a condition may ask of a conversation's ticket."""

    type: str
    states: tuple[str, ...]  # its state's category and both labels: any of them names it
    attributes: dict[str, Any]  # by name; a list attribute by its item's label

    def values(self, key: str) -> list[Any]:
        if key == "type":
            return [self.type]
        if key == "state":
            return list(self.states)
        value = self.attributes.get(TICKET_ALIASES.get(key, key))
        return [] if value is None else [value]


@dataclass(frozen=True)
class Linked:
    """What the conditions may ask beyond the conversation and its end user, loaded once for
    every conversation evaluated (``load_linked``): each one's ticket, and the custom objects
    linked to it or to its end user, by type identifier (each an instance's field values)."""

    tickets: dict[str, LinkedTicket] = default(default_factory=dict)
    objects: dict[str, dict[str, list[dict[str, Any]]]] = default(default_factory=dict)


NOTHING_LINKED = Linked()


def _needs(condition_lists: Iterable[list[dict[str, Any]]]) -> tuple[bool, set[str]]:
    """Whether the conditions ask about tickets, and which custom object types they ask of."""
    ticket, types = False, set()
    for conditions in condition_lists:
        for condition in conditions:
            scope, _, rest = str(condition.get("field")).partition(".")
            if scope == "ticket":
                ticket = True
            elif scope == "object":
                types.add(rest.partition(".")[0])
    return ticket, types


def _ticket_facts(ticket: Ticket) -> LinkedTicket:
    labels = {
        item["id"]: item["label"]
        for attribute in ticket.ticket_type.attributes
        if attribute["data_type"] == "list"
        for item in attribute.get("list_items") or []
    }
    lists = {a["name"] for a in ticket.ticket_type.attributes if a["data_type"] == "list"}
    state = ticket.state
    return LinkedTicket(
        type=ticket.ticket_type.name,
        states=(state.category, state.internal_label, state.external_label),
        attributes={
            name: labels.get(value, value) if name in lists else value
            for name, value in ticket.attributes.items()
        },
    )


def _object_facts(found: object_repository.LinkedValues) -> dict[str, Any]:
    # A decimal is kept as text (no digit lost); compared, it is the number it says.
    decimals = {a["name"] for a in found.type_attributes if a.get("type") == "decimal"}
    values: dict[str, Any] = {"external_id": found.external_id}
    for name, value in found.custom_attributes.items():
        if name in decimals and isinstance(value, str):
            try:
                value = Decimal(value)
            except InvalidOperation:
                pass
        values[name] = value
    return values


def load_linked(
    session: Session,
    conversations_: Sequence[Conversation],
    condition_lists: Iterable[list[dict[str, Any]]],
) -> Linked:
    """What the conditions need of these conversations' tickets and custom objects: nothing
    (no query) when no condition asks; else one query for the tickets and two for the
    objects, however many conversations and rules."""
    ticket, types = _needs(condition_lists)
    if not (ticket or types) or not conversations_:
        return NOTHING_LINKED
    ids = [c.id for c in conversations_]
    tickets = {}
    if ticket:
        tickets = {
            str(t.conversation_id): _ticket_facts(t)
            for t in ticket_repository.of_conversations(session, ids)
        }
    objects: dict[str, dict[str, list[dict[str, Any]]]] = {}
    if types:
        by_owner: dict[str, list[object_repository.LinkedValues]] = {}
        for found in object_repository.linked_values(
            session,
            sorted(types),
            conversation_ids=ids,
            user_ids=sorted({c.user_id for c in conversations_}),
        ):
            by_owner.setdefault(found.owner_id, []).append(found)
        for conversation in conversations_:
            mine = objects.setdefault(conversation.id, {})
            for found in by_owner.get(conversation.id, []) + by_owner.get(conversation.user_id, []):
                mine.setdefault(found.type_identifier, []).append(_object_facts(found))
    return Linked(tickets, objects)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _same(actual: Any, expected: Any) -> bool:
    """Equal, text ignoring case and surrounding spaces; a number equals its text (``3`` and
    ``"3"``: a rule written in a form has text only)."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or str(actual).casefold() == str(expected).casefold()
    if isinstance(actual, Decimal):  # a custom object's decimal: equal as numbers
        try:
            return actual == Decimal(str(expected).strip())
        except InvalidOperation:
            return False
    if isinstance(actual, str | int | float) and isinstance(expected, str | int | float):
        if isinstance(actual, str) or isinstance(expected, str):
            return str(actual).strip().casefold() == str(expected).strip().casefold()
    return bool(actual == expected)


def _values(conversation: Conversation, field: str, linked: Linked) -> list[Any]:
    """The values a condition on ``field`` compares: none when the conversation has none; one
    for most fields; one per linked custom object (any of them may hold)."""
    if field == "channel":
        given = conversation.attributes.get(CHANNEL_ATTRIBUTE)
        return [given if isinstance(given, str) and given.strip() else DEFAULT_CHANNEL]
    scope, _, key = field.partition(".")
    if scope == "conversation":
        found = conversation.attributes.get(key)
    elif scope == "user":
        user = conversation.user
        own = key in USER_FIELDS and key not in user.attributes
        found = getattr(user, key) if own else user.attributes.get(key)
    elif scope == "ticket":
        ticket = linked.tickets.get(conversation.id)
        if ticket is None:
            return []
        return ticket.values(key) if key else [ticket]
    else:  # object.<type>[.<field>]
        type_identifier, _, name = key.partition(".")
        instances = linked.objects.get(conversation.id, {}).get(type_identifier, [])
        if not name:
            return instances
        return [i[name] for i in instances if i.get(name) is not None]
    return [] if found is None else [found]


def _satisfies(op: str, actual: Any, expected: Any) -> bool:
    if op == "is":
        return _same(actual, expected)
    if op == "in":
        return any(_same(actual, one) for one in expected)
    if op == "contains":
        if isinstance(actual, list):
            return any(_same(one, expected) for one in actual)
        return str(expected).casefold() in str(actual).casefold()
    if op in ("gt", "lt"):
        number, bound = _number(actual), _number(expected)
        if number is None or bound is None:
            return False
        return number > bound if op == "gt" else number < bound
    return False


def holds(
    condition: dict[str, Any],
    conversation: Conversation,
    now: datetime,
    linked: Linked = NOTHING_LINKED,
) -> bool:
    """Whether the condition holds of the conversation now. ``linked`` holds its ticket and
    custom objects if the condition asks about them (``load_linked``)."""
    field: str = condition["field"]
    op: str = condition["op"]
    expected: Any = condition.get("value")
    if field == "time":
        return TimeWindow.model_validate(expected).holds(now)
    if field == "tag":
        tags = [t.casefold() for t in conversation.tags]
        wanted = expected if isinstance(expected, list) else [expected]
        has = any(str(w).strip().casefold() in tags for w in wanted)
        return not has if op == "is_not" else has
    values = _values(conversation, field, linked)
    if op == "exists":
        return bool(values)
    if op == "not_exists":
        return not values
    if op == "is_not":  # none of them is
        return not any(_same(actual, expected) for actual in values)
    return any(_satisfies(op, actual, expected) for actual in values)


def matches(
    conditions: list[dict[str, Any]],
    conversation: Conversation,
    now: datetime,
    linked: Linked = NOTHING_LINKED,
) -> bool:
    return all(holds(condition, conversation, now, linked) for condition in conditions)


def route(session: Session, conversation: Conversation, actor: Actor) -> RoutingRule | None:
    """Apply the first enabled rule that matches the conversation (which must be read locked in
    this transaction, as every conversation action has it); the rule, or None."""
    rules = repository.enabled(session)
    if not rules:
        return None
    now = utcnow()
    linked = load_linked(session, [conversation], (rule.conditions for rule in rules))
    for rule in rules:
        if matches(rule.conditions, conversation, now, linked):
            _apply(session, conversation, rule)
            return rule
    return None


def _on_waiting(session: Session, conversation: Conversation, actor: Actor) -> None:
    route(session, conversation, actor)


def _apply(session: Session, conversation: Conversation, rule: RoutingRule) -> None:
    actions = rule.actions
    history.record(
        session,
        conversation.id,
        "routed",
        SYSTEM,
        to_value=rule.id,
        detail={"rule_id": rule.id, "rule_name": rule.name},
    )
    add_tags = [t for t in actions.get("add_tags") or [] if t not in conversation.tags]
    if add_tags:
        conversations.set_tags(session, conversation, conversation.tags + add_tags, SYSTEM)
    priority = actions.get("priority")
    if priority is not None:
        conversations.merge_conversation_attributes(
            session, conversation, {conversations.PRIORITY_ATTRIBUTE: priority}, SYSTEM
        )
    team_id = actions.get("team_id")
    team = team_repository.get(session, team_id) if team_id is not None else None
    if team is None:
        return  # (none, or a team deleted since the rule was written: the rest still applies)
    teams.give_to_team(session, conversation, team, {"rule_id": rule.id})


conversations.on_waiting(_on_waiting)


# --- rules ------------------------------------------------------------------------------------


def list_rules(session: Session) -> list[RoutingRule]:
    return list(repository.list_all(session))


def get_rule(session: Session, rule_id: str) -> RoutingRule:
    rule = repository.get(session, rule_id)
    if rule is None:
        raise NotFound(f"No routing rule with id {rule_id!r}.")
    return rule


def _checked_actions(session: Session, actions: Actions) -> dict[str, Any]:
    if actions.team_id is not None and team_repository.get(session, actions.team_id) is None:
        raise invalid(f"No team with id {actions.team_id!r}.", field="actions.team_id")
    return actions.model_dump(exclude_none=True)


def _checked_conditions(session: Session, conditions: list[Condition]) -> list[dict[str, Any]]:
    """The conditions as stored, or a 422 if one names a custom object type, an attribute of
    it, or a ticket attribute that does not exist (a typo would never match)."""
    ticket_attributes: set[str] | None = None
    for number, condition in enumerate(conditions):
        where = f"conditions.{number}.field"
        scope, _, key = condition.field.partition(".")
        if scope == "ticket" and key and key not in TICKET_FIELDS:
            if ticket_attributes is None:
                ticket_attributes = ticket_repository.attribute_names(session)
            if key not in ticket_attributes:
                raise invalid(
                    f"No ticket type has an attribute {key!r} (ticket.type, ticket.state, "
                    "ticket.title and ticket.description are every ticket's).",
                    field=where,
                )
        elif scope == "object":
            identifier, _, name = key.partition(".")
            object_type = object_repository.type_by_identifier(session, identifier)
            if object_type is None:
                raise invalid(f"No custom object type {identifier!r}.", field=where)
            names = {a["name"] for a in object_type.attributes}
            if name and name not in names and name not in OBJECT_FIELDS:
                raise invalid(
                    f"The custom object type {identifier!r} has no attribute {name!r}.",
                    field=where,
                )
    return [c.model_dump() for c in conditions]


def _described(rule: RoutingRule) -> dict[str, Any]:
    """What the audit log keeps about a rule: all of it."""
    return {
        "name": rule.name,
        "position": rule.position,
        "enabled": rule.enabled,
        "conditions": rule.conditions,
        "actions": rule.actions,
    }


def create_rule(session: Session, rule: RuleIn, *, by: AuditActor | None = None) -> RoutingRule:
    """A rule; ``by`` is who makes it, for the audit log (None: findesk itself)."""
    now = utcnow()
    row = RoutingRule(
        name=rule.name.strip() or rule.name,
        position=rule.position if rule.position is not None else repository.next_position(session),
        enabled=rule.enabled,
        conditions=_checked_conditions(session, rule.conditions),
        actions=_checked_actions(session, rule.actions),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, by, "routing_rule.created", "routing_rule", row.id, _described(row))
    return row


def update_rule(
    session: Session, rule_id: str, patch: RulePatch, *, by: AuditActor | None = None
) -> RoutingRule:
    """Change what the patch says (a new ``position`` reorders the rules)."""
    rule = get_rule(session, rule_id)
    before = _described(rule)
    if patch.name is not None:
        rule.name = patch.name.strip() or patch.name
    if patch.position is not None:
        rule.position = patch.position
    if patch.enabled is not None:
        rule.enabled = patch.enabled
    if patch.conditions is not None:
        rule.conditions = _checked_conditions(session, patch.conditions)
    if patch.actions is not None:
        rule.actions = _checked_actions(session, patch.actions)
    rule.updated_at = utcnow()
    session.flush()
    audit.record_changes(
        session,
        by,
        "routing_rule.updated",
        "routing_rule",
        rule.id,
        rule.name,
        before,
        _described(rule),
    )
    return rule


def delete_rule(session: Session, rule_id: str, *, by: AuditActor | None = None) -> None:
    rule = get_rule(session, rule_id)
    audit.record(session, by, "routing_rule.deleted", "routing_rule", rule.id, _described(rule))
    session.delete(rule)
    session.flush()


@dataclass(frozen=True)
class KnownFields:
    """What conditions may name beyond the conversation: for the admin form's help."""

    ticket_attributes: list[str]  # besides ticket.type, .state, .title, .description
    object_types: list[tuple[str, list[str]]]  # (identifier, its fields)


def known_fields(session: Session) -> KnownFields:
    names = ticket_repository.attribute_names(session) - {TITLE, DESCRIPTION}
    return KnownFields(
        ticket_attributes=sorted(n for n in names if "." not in n and " " not in n),
        object_types=[
            (t.identifier, [*OBJECT_FIELDS, *(a["name"] for a in t.attributes)])
            for t in object_repository.list_types(session)
        ],
    )


def preview(
    session: Session, conditions: list[Condition], recent: int
) -> tuple[int, list[Conversation]]:
    """Which of the ``recent`` most recently active conversations the conditions match (as if
    they were evaluated now): (how many were examined, those that match). Changes nothing."""
    found = conversations.list_conversations(
        session, conversation_repository.ConversationFilter(), limit=recent
    )
    dumped = _checked_conditions(session, conditions)
    now = utcnow()
    linked = load_linked(session, found, [dumped])
    return len(found), [c for c in found if matches(dumped, c, now, linked)]
