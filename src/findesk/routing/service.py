"""Routing: when a conversation comes to wait for a person (Fin hands it over, or it is opened
with nobody assigned), the first enabled rule whose conditions all hold applies its actions, in
the same transaction as the change that triggered it: tags, priority, the team's queue, and a
member of the team if one is online with room (``teams.service.pick_member``). The history
records the rule that matched (``routed``) and each change it made.

This module registers itself with ``conversations.service.on_waiting`` when imported (the app
imports it through ``routing.endpoints``). Services never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit.actor import SYSTEM, Actor
from findesk.kit.errors import NotFound
from findesk.kit.text import invalid
from findesk.kit.timeutil import utcnow
from findesk.routing import repository
from findesk.routing.models import RoutingRule
from findesk.routing.schemas import Actions, Condition, RuleIn, RulePatch, TimeWindow
from findesk.teams import repository as team_repository
from findesk.teams import service as teams

CHANNEL_ATTRIBUTE = "channel"
DEFAULT_CHANNEL = "messenger"  # a conversation Fin opened without saying (as the reports count)
USER_FIELDS = ("email", "name")  # the end user's own fields, besides their attributes


# --- evaluating -----------------------------------------------------------------------------


def _same(actual: Any, expected: Any) -> bool:
    """Equal, text ignoring case and surrounding spaces; a number equals its text (``3`` and
    ``"3"``: a rule written in a form has text only)."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or str(actual).casefold() == str(expected).casefold()
    if isinstance(actual, str | int | float) and isinstance(expected, str | int | float):
        if isinstance(actual, str) or isinstance(expected, str):
            return str(actual).strip().casefold() == str(expected).strip().casefold()
    return bool(actual == expected)


def _value_of(conversation: Conversation, field: str) -> tuple[bool, Any]:
    """(whether it has the field, its value)."""
    if field == "channel":
        given = conversation.attributes.get(CHANNEL_ATTRIBUTE)
        return True, given if isinstance(given, str) and given.strip() else DEFAULT_CHANNEL
    scope, _, key = field.partition(".")
    if scope == "conversation":
        attributes = conversation.attributes
        return key in attributes, attributes.get(key)
    user = conversation.user
    if key in USER_FIELDS and key not in user.attributes:
        value = getattr(user, key)
        return value is not None, value
    return key in user.attributes, user.attributes.get(key)


def holds(condition: dict[str, Any], conversation: Conversation, now: datetime) -> bool:
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
    present, actual = _value_of(conversation, field)
    if op == "exists":
        return bool(present and actual is not None)
    if op == "not_exists":
        return not present or actual is None
    if not present:
        return op == "is_not"
    if op == "is":
        return _same(actual, expected)
    if op == "is_not":
        return not _same(actual, expected)
    if op == "in":
        return any(_same(actual, one) for one in expected)
    if op == "contains":
        if isinstance(actual, list):
            return any(_same(one, expected) for one in actual)
        return str(expected).casefold() in str(actual).casefold()
    if op in ("gt", "lt"):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return bool(actual > expected if op == "gt" else actual < expected)
    return False


def matches(conditions: list[dict[str, Any]], conversation: Conversation, now: datetime) -> bool:
    return all(holds(condition, conversation, now) for condition in conditions)


def route(session: Session, conversation: Conversation, actor: Actor) -> RoutingRule | None:
    """Apply the first enabled rule that matches the conversation (which must be read locked in
    this transaction, as every conversation action has it); the rule, or None."""
    rules = repository.enabled(session)
    if not rules:
        return None
    now = utcnow()
    for rule in rules:
        if matches(rule.conditions, conversation, now):
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


def _conditions(conditions: list[Condition]) -> list[dict[str, Any]]:
    return [c.model_dump() for c in conditions]


def create_rule(session: Session, rule: RuleIn) -> RoutingRule:
    now = utcnow()
    row = RoutingRule(
        name=rule.name.strip() or rule.name,
        position=rule.position if rule.position is not None else repository.next_position(session),
        enabled=rule.enabled,
        conditions=_conditions(rule.conditions),
        actions=_checked_actions(session, rule.actions),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def update_rule(session: Session, rule_id: str, patch: RulePatch) -> RoutingRule:
    rule = get_rule(session, rule_id)
    if patch.name is not None:
        rule.name = patch.name.strip() or patch.name
    if patch.position is not None:
        rule.position = patch.position
    if patch.enabled is not None:
        rule.enabled = patch.enabled
    if patch.conditions is not None:
        rule.conditions = _conditions(patch.conditions)
    if patch.actions is not None:
        rule.actions = _checked_actions(session, patch.actions)
    rule.updated_at = utcnow()
    session.flush()
    return rule


def delete_rule(session: Session, rule_id: str) -> None:
    session.delete(get_rule(session, rule_id))
    session.flush()


def preview(
    session: Session, conditions: list[Condition], recent: int
) -> tuple[int, list[Conversation]]:
    """Which of the ``recent`` most recently active conversations the conditions match (as if
    they were evaluated now): (how many were examined, those that match). Changes nothing."""
    found = conversations.list_conversations(
        session, conversation_repository.ConversationFilter(), limit=recent
    )
    dumped = _conditions(conditions)
    now = utcnow()
    return len(found), [c for c in found if matches(dumped, c, now)]
