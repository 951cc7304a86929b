"""SLA timers: when a conversation comes to wait for a person (Fin's handover, or a create with
nobody assigned), the first policy that matches its team and priority starts its targets' timers,
in the transaction of that change; every later change that moves a timer (a human's public reply,
the end user writing, a status change, a snooze, a change of team or priority) moves it in its own
transaction, through the conversation hooks this module registers when imported.

- **First response**: from the handover, met by the first human public reply.
- **Next response**: from the end user's message after a human's reply, met by the next one.
- **Resolution**: from the handover, met when resolved (or closed); a reopen starts it again.
- **Paused** while waiting on the customer (snoozed, not open, or the latest public message is a
  human's reply): the business seconds spent paused push the due time back.

Times are counted in the business hours of the conversation's team (``calendar``). The checker
(``check``) breaches the timers past due, once each: the history, the policy's escalation and
the alert, in one transaction per timer with the conversation and the timer locked.

Services never commit; each function takes ``now`` so that tests can freeze the clock."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from findesk.alerts import service as alerts
from findesk.audit import service as audit
from findesk.audit.service import AuditActor
from findesk.conversations import history
from findesk.conversations import repository as conversation_repository
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit.actor import SYSTEM, Actor
from findesk.kit.db import Database
from findesk.kit.errors import NotFound
from findesk.kit.exclusive import exclusive
from findesk.kit.text import invalid
from findesk.kit.timeutil import as_utc, isoformat, utcnow
from findesk.live import service as live

# Imported first so that routing's waiting hook runs before this one: it sets team and priority.
from findesk.routing import service as _routing  # noqa: F401
from findesk.sla import repository
from findesk.sla.models import TARGETS, SlaPolicy, SlaTimer
from findesk.sla.schemas import PolicyIn, PolicyPatch
from findesk.teams import hours
from findesk.teams import repository as team_repository
from findesk.teams import service as teams

ADVISORY_LOCK_KEY = 0x66696E736C  # b"finsl": one breach check per database at a time
PRIORITY_LEVELS = ("low", "normal", "high", "urgent")
LABELS = {
    "first_response": "First response",
    "next_response": "Next response",
    "resolution": "Resolution",
}
DUE_FRACTION = 0.25  # under this share of the target left: "due"
BATCH = 100


# The time of a transaction's changes for the timers, when the caller gives one (the checker
# does, and tests freeze the clock so): ``session.info[NOW]``; else the clock.
NOW = "findesk.sla.now"


def now_of(session: Session) -> datetime:
    given = session.info.get(NOW)
    return given if isinstance(given, datetime) else utcnow()


def calendar(session: Session, team_id: str | None) -> hours.BusinessHours:
    """The business hours a team's timers count in (open every second without a team)."""
    return teams.calendar_for(session, team_id)


# --- which policy ------------------------------------------------------------------------------


def priority_of(conversation: Conversation) -> str | None:
    value = (conversation.attributes or {}).get(conversations.PRIORITY_ATTRIBUTE)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def matches(policy: SlaPolicy, conversation: Conversation) -> bool:
    if policy.team_id is not None and policy.team_id != conversation.team_id:
        return False
    if policy.priority is not None:
        priority = priority_of(conversation)
        if priority is None or priority.casefold() != policy.priority.casefold():
            return False
    return True


def policy_for(session: Session, conversation: Conversation) -> SlaPolicy | None:
    """The first policy, in order, whose team and priority the conversation has."""
    for policy in repository.policies(session):
        if matches(policy, conversation):
            return policy
    return None


# --- timers ------------------------------------------------------------------------------------


def _due(cal: hours.BusinessHours, timer: SlaTimer) -> datetime:
    seconds = timer.target_seconds + timer.paused_seconds
    try:
        return hours.deadline(cal, as_utc(timer.started_at), seconds)
    except ValueError:  # a calendar that never opens: count every second rather than fail
        return hours.deadline(hours.ALWAYS, as_utc(timer.started_at), seconds)


def _start(
    session: Session,
    conversation: Conversation,
    existing: dict[str, SlaTimer],
    target: str,
    policy: SlaPolicy,
    cal: hours.BusinessHours,
    now: datetime,
) -> SlaTimer | None:
    """(Re)start the target's timer under ``policy``: None if the policy has no such target
    (an earlier cycle's row of it goes)."""
    minutes = policy.minutes(target)
    timer = existing.get(target)
    if minutes is None:
        if timer is not None:
            session.delete(timer)
            del existing[target]
        return None
    if timer is None:
        timer = SlaTimer(conversation_id=conversation.id, target=target)
        session.add(timer)
        conversation.sla_timed = True
        existing[target] = timer
    timer.policy_id = policy.id
    timer.policy_name = policy.name
    timer.target_seconds = minutes * 60
    timer.started_at = now
    timer.paused_at = None
    timer.paused_seconds = 0
    timer.met_at = None
    timer.breached_at = None
    timer.due_at = _due(cal, timer)
    return timer


def _by_target(session: Session, conversation: Conversation) -> dict[str, SlaTimer]:
    if not conversation.sla_timed:
        return {}  # (no policy ever started one: nothing to look for)
    return {t.target: t for t in repository.timers(session, conversation.id)}


def waiting_on_customer(session: Session, conversation: Conversation) -> bool:
    """Whether the clock stops: snoozed, not open, or a human answered last in public."""
    if conversation.snoozed_until is not None or conversation.status != "open":
        return True
    latest = repository.recent_public_authors(session, conversation.id, limit=1)
    return bool(latest) and latest[0] == "human"


def _sync_pauses(
    session: Session, conversation: Conversation, timers: dict[str, SlaTimer], now: datetime
) -> None:
    """Pause the running timers, or resume them (their due time moved by the pause)."""
    running = [t for t in timers.values() if t.met_at is None]
    if not running:
        return
    paused = waiting_on_customer(session, conversation)
    cal = calendar(session, conversation.team_id)
    for timer in running:
        if paused and timer.paused_at is None:
            timer.paused_at = now
        elif not paused and timer.paused_at is not None:
            spent = hours.elapsed(cal, as_utc(timer.paused_at), now)
            timer.paused_seconds += round(spent)
            timer.paused_at = None
            if timer.breached_at is None:
                timer.due_at = _due(cal, timer)


def conversation_waiting(session: Session, conversation: Conversation, now: datetime) -> None:
    """It waits for a person now: a new cycle under the first matching policy (an earlier
    cycle's timers are replaced; none at all when no policy matches)."""
    existing = _by_target(session, conversation)
    policy = policy_for(session, conversation) if conversation.status == "open" else None
    if policy is None:
        for timer in existing.values():
            session.delete(timer)
        return
    cal = calendar(session, conversation.team_id)
    for target in ("first_response", "resolution"):
        _start(session, conversation, existing, target, policy, cal, now)
    stale = existing.pop("next_response", None)
    if stale is not None:
        session.delete(stale)
    _sync_pauses(session, conversation, existing, now)


def human_replied(session: Session, conversation: Conversation, now: datetime) -> None:
    """A human's public reply: meets the response timers running; the others pause."""
    timers = _by_target(session, conversation)
    if not timers:
        return
    for target in ("first_response", "next_response"):
        timer = timers.get(target)
        if timer is not None and timer.met_at is None:
            timer.met_at = now
            timer.paused_at = None
    _sync_pauses(session, conversation, timers, now)


def end_user_wrote(session: Session, conversation: Conversation, now: datetime) -> None:
    """The end user wrote: after a human's reply, the next response is due; a resolved
    conversation it reopened needs resolving again; paused timers run again."""
    timers = _by_target(session, conversation)
    if not timers:
        return
    policy = policy_for(session, conversation)
    cal = calendar(session, conversation.team_id)
    resolution = timers.get("resolution")
    if (
        policy is not None
        and conversation.status == "open"
        and resolution is not None
        and resolution.met_at is not None
    ):
        _start(session, conversation, timers, "resolution", policy, cal, now)
    authors = repository.recent_public_authors(session, conversation.id, limit=2)
    after_human = len(authors) == 2 and authors[0] == "end_user" and authors[1] == "human"
    current = timers.get("next_response")
    if policy is not None and after_human and (current is None or current.met_at is not None):
        _start(session, conversation, timers, "next_response", policy, cal, now)
    _sync_pauses(session, conversation, timers, now)


def status_changed(
    session: Session, conversation: Conversation, before: str, now: datetime
) -> None:
    """Resolved or closed: the resolution is met (and the rest stops). Reopened: it runs
    again."""
    timers = _by_target(session, conversation)
    if not timers:
        return
    resolution = timers.get("resolution")
    if conversation.status in ("resolved", "closed"):
        if resolution is not None and resolution.met_at is None:
            resolution.met_at = now
            resolution.paused_at = None
    elif conversation.status == "open" and before != "open":
        policy = policy_for(session, conversation)
        if policy is not None and resolution is not None and resolution.met_at is not None:
            _start(
                session,
                conversation,
                timers,
                "resolution",
                policy,
                calendar(session, conversation.team_id),
                now,
            )
    _sync_pauses(session, conversation, timers, now)


def reevaluate(session: Session, conversation: Conversation, now: datetime) -> None:
    """The team or priority changed: the timers still running (not breached) follow the
    policy that matches now, from when they started, in the team's hours (those the new
    policy has no target for stop)."""
    timers = _by_target(session, conversation)
    running = [t for t in timers.values() if t.met_at is None and t.breached_at is None]
    if not running:
        return
    policy = policy_for(session, conversation)
    cal = calendar(session, conversation.team_id)
    for timer in running:
        minutes = policy.minutes(timer.target) if policy is not None else None
        if policy is None or minutes is None:
            session.delete(timer)
            continue
        timer.policy_id = policy.id
        timer.policy_name = policy.name
        timer.target_seconds = minutes * 60
        timer.due_at = _due(cal, timer)


# --- the hooks -----------------------------------------------------------------------------------


def _on_waiting(session: Session, conversation: Conversation, _actor: Actor) -> None:
    conversation_waiting(session, conversation, now_of(session))


def _on_reply(session: Session, conversation: Conversation, _message: Any, _actor: Actor) -> None:
    human_replied(session, conversation, now_of(session))


def _on_status(session: Session, conversation: Conversation, before: str, _actor: Actor) -> None:
    status_changed(session, conversation, before, now_of(session))


def _on_activity(session: Session, conversation: Conversation, kind: str) -> None:
    now = now_of(session)
    if kind == "user_message":
        end_user_wrote(session, conversation, now)
    elif kind in ("snooze", "wake"):
        _sync_pauses(session, conversation, _by_target(session, conversation), now)
    elif kind in ("priority", "team"):
        if conversations.coming_to_wait(session, conversation.id):
            return  # routing's changes: this module's own waiting hook, last, starts the timers
        reevaluate(session, conversation, now)


conversations.on_waiting(_on_waiting)
conversations.on_public_reply(_on_reply)
conversations.on_status_change(_on_status)
conversations.on_activity(_on_activity)


# --- breaches ------------------------------------------------------------------------------------


def check(db: Database, now: datetime | None = None) -> int:
    """The checker's round, one process at a time per database: breach every timer past due.
    How many it breached (0 when another process holds the round)."""
    with exclusive(db, ADVISORY_LOCK_KEY, wait=False, stop=threading.Event()) as held:
        if not held:
            return 0
        return breach_due(db, now or utcnow())


def breach_due(db: Database, now: datetime) -> int:
    """Breach the timers past due at ``now``, each in its own transaction; how many. Safe to
    run concurrently: each timer is judged again with its conversation and row locked."""
    breached = 0
    while True:
        with db.read_session() as session:
            found = repository.due(session, now, BATCH)
        done = 0
        for timer_id, conversation_id in found:
            with db.transaction() as session:
                session.info[NOW] = now
                if breach(session, timer_id, conversation_id, now):
                    done += 1
        breached += done
        if len(found) < BATCH or done == 0:
            return breached


def breach(session: Session, timer_id: int, conversation_id: str, now: datetime) -> bool:
    """Record one timer's breach, if it still is one: ``breached_at``, the history, the
    escalation and the alert. The conversation is locked first (as every change of it is),
    then the timer."""
    conversation = conversation_repository.get_for_update(session, conversation_id)
    if conversation is None:
        return False
    timer = repository.timer_for_update(session, timer_id)
    if (
        timer is None
        or timer.met_at is not None
        or timer.breached_at is not None
        or timer.paused_at is not None
        or as_utc(timer.due_at) > now
        or conversation.status != "open"
    ):
        return False
    timer.breached_at = now
    policy = repository.policy(session, timer.policy_id) if timer.policy_id else None
    detail: dict[str, Any] = {
        "target": timer.target,
        "policy_id": timer.policy_id,
        "policy_name": timer.policy_name,
        "due_at": isoformat(as_utc(timer.due_at)),
        "escalation": policy.escalation if policy is not None else "notify",
    }
    history.record(
        session, conversation.id, "sla_breached", SYSTEM, to_value=timer.target, detail=detail
    )
    if policy is not None:
        escalate(session, conversation, policy, now)
    alerts.raise_sla_breach(session, conversation, timer.target, detail)
    live.record(session, conversation.id, "sla", SYSTEM, conversations.owner_kind(conversation))
    return True


def raised(priority: str | None) -> str | None:
    """One step up among low < normal < high < urgent (none counts as normal); None when it
    cannot go up (urgent, or a value not on that scale)."""
    level = (priority or "normal").casefold()
    if level not in PRIORITY_LEVELS or level == PRIORITY_LEVELS[-1]:
        return None
    return PRIORITY_LEVELS[PRIORITY_LEVELS.index(level) + 1]


def escalate(
    session: Session, conversation: Conversation, policy: SlaPolicy, now: datetime
) -> None:
    if policy.escalation == "raise_priority":
        higher = raised(priority_of(conversation))
        if higher is not None:
            conversations.merge_conversation_attributes(
                session, conversation, {conversations.PRIORITY_ATTRIBUTE: higher}, SYSTEM
            )
    elif policy.escalation == "reassign" and policy.escalation_team_id is not None:
        team = team_repository.get(session, policy.escalation_team_id)
        if team is None:
            return  # deleted since: the alert still goes
        teams.give_to_team(session, conversation, team, {"sla_policy_id": policy.id})


# --- what the inbox shows ------------------------------------------------------------------------

ChipState = Literal["ok", "due", "breached", "paused"]


@dataclass(frozen=True)
class Chip:
    """The nearest open target of a conversation, as the inbox shows it."""

    state: ChipState
    text: str
    target: str
    label: str
    due_at: datetime | None
    target_seconds: int


def span(seconds: float, *, up: bool = True) -> str:
    """``12 min``, ``2 h 5 min``, ``3 d 4 h``: whole minutes, rounded up for the time left,
    down for the time overdue (``<1 min`` under one)."""
    whole = math.ceil if up else math.floor
    minutes = whole(max(seconds, 0.0) / 60)
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        h, m = divmod(minutes, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, rest = divmod(minutes, 24 * 60)
    h = rest // 60
    return f"{d} d {h} h" if h else f"{d} d"


def chip_of(conversation: Conversation, timers: list[SlaTimer], now: datetime) -> Chip | None:
    if conversation.status != "open":
        return None
    running = [t for t in timers if t.met_at is None]
    if not running:
        return None
    counting = [t for t in running if t.breached_at is not None or t.paused_at is None]
    if not counting:
        first = min(running, key=lambda t: TARGETS.index(t.target))
        return Chip("paused", "Paused", first.target, LABELS[first.target], None, 0)
    timer = min(counting, key=lambda t: (as_utc(t.due_at), TARGETS.index(t.target)))
    due_at = as_utc(timer.due_at)
    left = (due_at - now).total_seconds()
    label = LABELS[timer.target]
    if left <= 0 or timer.breached_at is not None:
        state: ChipState = "breached"
        text = f"{label} overdue {span(-left, up=False)}"
    else:
        state = "due" if left < DUE_FRACTION * timer.target_seconds else "ok"
        text = f"{label} in {span(left)}"
    return Chip(state, text, timer.target, label, due_at, timer.target_seconds)


def chips(
    session: Session, found: list[Conversation], now: datetime | None = None
) -> dict[str, Chip]:
    """The chip of each of these conversations that has one (a queue's page)."""
    now = now or utcnow()
    by_conversation = repository.timers_of(session, [c.id for c in found if c.status == "open"])
    shown: dict[str, Chip] = {}
    for conversation in found:
        chip = chip_of(conversation, by_conversation.get(conversation.id, []), now)
        if chip is not None:
            shown[conversation.id] = chip
    return shown


def chip(session: Session, conversation: Conversation, now: datetime | None = None) -> Chip | None:
    return chip_of(conversation, repository.timers(session, conversation.id), now or utcnow())


def timers(session: Session, conversation_id: str) -> list[SlaTimer]:
    return repository.timers(session, conversation_id)


# --- policies ------------------------------------------------------------------------------------


def list_policies(session: Session) -> list[SlaPolicy]:
    return list(repository.policies(session))


def get_policy(session: Session, policy_id: str) -> SlaPolicy:
    found = repository.policy(session, policy_id)
    if found is None:
        raise NotFound(f"No SLA policy with id {policy_id!r}.")
    return found


def _check_team(session: Session, team_id: str | None, field: str) -> None:
    if team_id is not None and team_repository.get(session, team_id) is None:
        raise invalid(f"No team with id {team_id!r}.", field=field)


def _check(session: Session, policy: SlaPolicy) -> None:
    _check_team(session, policy.team_id, "team_id")
    if not any(policy.minutes(t) is not None for t in TARGETS):
        raise invalid(
            "A policy needs at least one target: first response, next response or resolution.",
            field="first_response_minutes",
        )
    if policy.escalation == "reassign":
        if policy.escalation_team_id is None:
            raise invalid("Reassign to which team?", field="escalation_team_id")
        _check_team(session, policy.escalation_team_id, "escalation_team_id")
    else:
        policy.escalation_team_id = None


def _described(policy: SlaPolicy) -> dict[str, Any]:
    """What the audit log keeps about a policy: all of it."""
    return {
        "name": policy.name,
        "position": policy.position,
        "team_id": policy.team_id,
        "priority": policy.priority,
        "first_response_minutes": policy.first_response_minutes,
        "next_response_minutes": policy.next_response_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "escalation": policy.escalation,
        "escalation_team_id": policy.escalation_team_id,
    }


def _record_changes(
    session: Session, policy: SlaPolicy, before: dict[str, Any], by: AuditActor | None
) -> None:
    audit.record_changes(
        session,
        by,
        "sla_policy.updated",
        "sla_policy",
        policy.id,
        policy.name,
        before,
        _described(policy),
    )


def create_policy(session: Session, body: PolicyIn, *, by: AuditActor | None = None) -> SlaPolicy:
    """A policy; ``by`` is who makes it, for the audit log (None: findesk itself)."""
    now = utcnow()
    policy = SlaPolicy(
        name=body.name.strip() or body.name,
        position=body.position if body.position is not None else repository.next_position(session),
        team_id=body.team_id,
        priority=(body.priority or "").strip() or None,
        first_response_minutes=body.first_response_minutes,
        next_response_minutes=body.next_response_minutes,
        resolution_minutes=body.resolution_minutes,
        escalation=body.escalation,
        escalation_team_id=body.escalation_team_id,
        created_at=now,
        updated_at=now,
    )
    _check(session, policy)
    session.add(policy)
    session.flush()
    audit.record(session, by, "sla_policy.created", "sla_policy", policy.id, _described(policy))
    return policy


def update_policy(
    session: Session, policy_id: str, patch: PolicyPatch, *, by: AuditActor | None = None
) -> SlaPolicy:
    policy = get_policy(session, policy_id)
    before = _described(policy)
    given = patch.model_dump(exclude_unset=True)
    for key, value in given.items():
        if key == "name" and value is not None:
            policy.name = value.strip() or value
        elif key == "position" and value is not None:
            policy.position = value
        elif key == "priority":
            policy.priority = (value or "").strip() or None
        elif key == "escalation" and value is not None:
            policy.escalation = value
        elif key in (
            "team_id",
            "escalation_team_id",
            "first_response_minutes",
            "next_response_minutes",
            "resolution_minutes",
        ):
            setattr(policy, key, value)
    _check(session, policy)
    policy.updated_at = utcnow()
    session.flush()
    _record_changes(session, policy, before, by)
    return policy


def move_policy(
    session: Session, policy_id: str, step: int, *, by: AuditActor | None = None
) -> None:
    """Up (-1) or down (+1) one place: the order is renumbered 0, 1, 2… (each policy whose
    place changed is logged)."""
    ordered = list(repository.policies(session))
    before = {p.id: _described(p) for p in ordered}
    index = next((i for i, p in enumerate(ordered) if p.id == policy_id), None)
    if index is None:
        raise NotFound(f"No SLA policy with id {policy_id!r}.")
    other = index + step
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, policy in enumerate(ordered):
        policy.position = position
    session.flush()
    for policy in ordered:
        _record_changes(session, policy, before[policy.id], by)


def delete_policy(session: Session, policy_id: str, *, by: AuditActor | None = None) -> None:
    """Its timers run on as they were (without an escalation beyond the alert)."""
    policy = get_policy(session, policy_id)
    audit.record(session, by, "sla_policy.deleted", "sla_policy", policy.id, _described(policy))
    session.delete(policy)
    session.flush()
