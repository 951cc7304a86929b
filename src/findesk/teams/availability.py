"""What findesk tells Fin at handover about the team that will answer: when routing has run for
a conversation that came to wait for a person and it is in a team's queue, its attributes say
the team's name, whether it is open, when it opens, and how long people usually wait. Written in
the same transaction (``conversations.service.merge_conversation_attributes``), so Fin hears of
the change and its next sync run fetches them.

Registers itself with ``conversations.service.on_waiting`` when imported, after routing's hook
(imported first here), so that it sees the team routing chose. Services never commit."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation
from findesk.kit.actor import SYSTEM, Actor
from findesk.kit.timeutil import as_utc, isoformat, utcnow
from findesk.routing import service as _routing  # noqa: F401  (its hook runs first)
from findesk.teams import hours, repository
from findesk.teams.hours import BusinessHours
from findesk.teams.service import calendar_of

TEAM = "findesk_team"
TEAM_OPEN = "findesk_team_open"
TEAM_OPENS_AT = "findesk_team_opens_at"
EXPECTED_WAIT = "findesk_expected_wait_minutes"
HISTORY_DAYS = 14
MIN_SAMPLES = 5


def business_waits(
    session: Session, team_id: str, calendar: BusinessHours, now: datetime
) -> list[float]:
    """The business-hours seconds from handover to the first person taking it, of the team's
    conversations handed over in the last ``HISTORY_DAYS`` days."""
    since = now - timedelta(days=HISTORY_DAYS)
    waits = []
    for at, detail in repository.first_takes(session, team_id, since):
        waited = detail.get("seconds_after_handover")
        if isinstance(waited, bool) or not isinstance(waited, int | float):
            continue
        taken = as_utc(at)
        handed_over = taken - timedelta(seconds=waited)
        if handed_over >= since:
            waits.append(hours.elapsed(calendar, handed_over, taken))
    return waits


def expected_wait_minutes(waits: list[float], calendar: BusinessHours, now: datetime) -> int | None:
    """The median business-hours wait, plus the time until the team opens if it is closed, in
    whole minutes (rounded); None with fewer than ``MIN_SAMPLES`` waits."""
    if len(waits) < MIN_SAMPLES:
        return None
    seconds = statistics.median(waits)
    opens = hours.next_open(calendar, now)
    if opens is not None and opens > now:
        seconds += (opens - now).total_seconds()
    return round(seconds / 60)


def availability(session: Session, team_id: str, now: datetime) -> dict[str, Any] | None:
    """The attributes for a conversation in the team's queue (None values: absent)."""
    team = repository.get(session, team_id)
    if team is None:
        return None
    calendar = calendar_of(team)
    is_open = hours.is_open(calendar, now)
    opens = None if is_open else hours.next_open(calendar, now)
    waits = business_waits(session, team.id, calendar, now)
    return {
        TEAM: team.name,
        TEAM_OPEN: is_open,
        TEAM_OPENS_AT: isoformat(opens) if opens is not None else None,
        EXPECTED_WAIT: expected_wait_minutes(waits, calendar, now),
    }


def tell_fin(session: Session, conversation: Conversation, actor: Actor) -> None:
    """After routing, at a handover (not when a conversation is opened for a person: Fin was
    never in it, and it has no handover time), if the conversation is in a team's queue."""
    if conversation.team_id is None or conversation.handed_over_at is None:
        return
    attributes = availability(session, conversation.team_id, utcnow())
    if attributes is not None:
        conversations.merge_conversation_attributes(session, conversation, attributes, SYSTEM)


conversations.on_waiting(tell_fin)
