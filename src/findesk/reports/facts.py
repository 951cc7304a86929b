"""What one conversation's history and messages say, for the reports: the definitions of every
measure live here (and, in words, in the README's "Reports: what each number means").

Pure: ``conversation_fact`` takes the conversation's rows and returns its ``Fact``; the refresh
reads the rows and writes the facts (``service.refresh``).

- **Owner** is replayed from the history: the creation's assignee, then each ownership change.
  An owner that is a bot agent is Fin; nobody means waiting for a human; anyone else is a human.
- **Handed over**: the conversation left Fin (Fin-owned → waiting or human) at least once. The
  first such change is *the handover*: its time and Fin's reason (``unspecified`` when Fin gave
  none) are the ones reported. A take-over straight from Fin by a person counts too (reason
  ``taken over from Fin``).
- **Taken over**: the first change to a human owner at or after the handover.
- **First human reply**: the first public reply by a human at or after the handover.
- **Resolved**: the conversation's current status is resolved or closed; its resolution time runs
  from creation to the last change to that status (a reopened conversation is not resolved until
  it is resolved again).
- **Fin-resolved**: Fin set resolved or closed before any handover. Fin's first such change is
  the resolution reported.
- **Came back** (a reopen of Fin's resolution): within the reopen window after Fin's resolution,
  the end user wrote in that conversation again, or opened another conversation (a visitor since
  merged into the user counts as the user), or the conversation was handed over. A Fin
  resolution is **durable** once its window has passed with none of these.
- **Replies**: public comments by agents (Fin's and humans'); **human replies** by humans. The
  rating request findesk writes on a person's behalf (CSAT) is neither.
- **Human-handled**: handed over, or a human replied or owned it at any point.
- Conversions to a ticket, ticket state changes, tags, titles and attribute changes do not move
  any of these: a conversation Fin converts to a ticket stays Fin's until it is handed over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from findesk.conversations.history import OWNERSHIP_KINDS

RESOLVED_STATUSES = frozenset({"resolved", "closed"})
RATING_REQUESTED = "rating_requested"  # csat's history event: its message is not a reply
CHANNEL_ATTRIBUTE = "channel"
UNSPECIFIED_REASON = "unspecified"
TAKEN_FROM_FIN = "taken over from Fin"


@dataclass(frozen=True)
class EventIn:
    kind: str
    actor: str
    from_value: Any
    to_value: Any
    detail: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class MessageIn:
    created_at: datetime
    author_type: str  # end_user | agent
    author_agent_id: str | None
    visibility: str
    message_type: str
    id: str = ""


@dataclass(frozen=True)
class ConversationIn:
    id: str
    user_id: str
    created_at: datetime
    attributes: dict[str, Any]
    team_id: str | None = None  # the team whose queue it is in now


@dataclass
class Fact:
    conversation_id: str
    user_id: str
    created_at: datetime
    day: date
    channel: str
    team_id: str
    agent_id: str
    reason: str
    handed_over_at: datetime | None
    seconds_to_take_over: float | None
    seconds_to_first_human_reply: float | None
    resolved_at: datetime | None
    seconds_to_resolve: float | None
    fin_resolved_at: datetime | None
    came_back_at: datetime | None
    human_handled: bool
    replies: int
    human_replies: int
    csat_score: int | None

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


# The seconds an end user waited between two moments (the hook for business hours: teams and
# SLAs will pass one that counts only their team's open hours).
Waited = Callable[[datetime, datetime], float]


def _seconds(start: datetime, end: datetime) -> float:
    return round(max((end - start).total_seconds(), 0.0), 3)


def channel_of(conversation: ConversationIn, events: Sequence[EventIn]) -> str:
    """``attributes.channel`` when the app that opened it set one, else ``messenger`` for a
    conversation Fin opened (the Fin Messenger), ``agent`` for one a person opened."""
    given = conversation.attributes.get(CHANNEL_ATTRIBUTE)
    if isinstance(given, str) and given.strip():
        return given.strip()[:64]
    opened_by_fin = bool(events) and events[0].kind == "created" and events[0].actor == "fin"
    return "messenger" if opened_by_fin else "agent"


def conversation_fact(
    conversation: ConversationIn,
    events: Sequence[EventIn],
    messages: Sequence[MessageIn],
    *,
    bots: frozenset[str],
    others_created: Iterable[datetime] = (),
    csat_score: int | None = None,
    timezone: ZoneInfo,
    reopen_window: timedelta,
    waited: Waited | None = None,
) -> Fact:
    """The conversation's fact. ``events`` and ``messages`` oldest first; ``others_created``: when
    the same end user's other conversations were opened; ``waited``: how the time an end user
    waits for a person is counted (default: every second; business hours arrive with teams)."""
    waited = waited or _seconds

    def kind_of(owner: str | None) -> str:
        return "waiting" if owner is None else ("fin" if owner in bots else "human")

    owner: str | None = None
    handed_over_at: datetime | None = None
    reason = ""
    taken_over_at: datetime | None = None
    first_human: str | None = None  # the human who first took it (or, failing that, replied)
    human_owned = False
    status_at: datetime | None = None  # the last change to a resolved status, if still resolved
    fin_resolved_at: datetime | None = None
    for event in events:
        if event.kind == "created":
            owner = (event.to_value or {}).get("assignee_id")
            human_owned = kind_of(owner) == "human"
            if human_owned:
                first_human = owner
        elif event.kind in OWNERSHIP_KINDS:
            before, owner = kind_of(owner), event.to_value
            after = kind_of(owner)
            if before == "fin" and after != "fin" and handed_over_at is None:
                handed_over_at = event.at
                if event.kind == "handover":
                    reason = str((event.detail or {}).get("reason") or UNSPECIFIED_REASON)[:255]
                else:
                    reason = TAKEN_FROM_FIN
            if after == "human":
                human_owned = True
                first_human = first_human or owner
                if handed_over_at is not None and taken_over_at is None:
                    taken_over_at = event.at
        elif event.kind == "status":
            if event.to_value in RESOLVED_STATUSES:
                status_at = event.at
                if event.actor == "fin" and handed_over_at is None and fin_resolved_at is None:
                    fin_resolved_at = event.at
            else:
                status_at = None

    automated = {
        str((event.detail or {}).get("message_id"))
        for event in events
        if event.kind == RATING_REQUESTED
    }
    replies = human_replies = 0
    first_human_reply_at: datetime | None = None
    for message in messages:
        is_reply = (
            message.id not in automated
            and message.author_type == "agent"
            and message.visibility == "public"
            and message.message_type == "comment"
        )
        if not is_reply:
            continue
        replies += 1
        if message.author_agent_id in bots:
            continue
        human_replies += 1
        first_human = first_human or message.author_agent_id
        if first_human_reply_at is None and (
            handed_over_at is not None and message.created_at >= handed_over_at
        ):
            first_human_reply_at = message.created_at

    came_back_at: datetime | None = None
    if fin_resolved_at is not None:
        window_end = fin_resolved_at + reopen_window
        candidates = [
            m.created_at
            for m in messages
            if m.author_type == "end_user" and fin_resolved_at < m.created_at <= window_end
        ]
        candidates += [t for t in others_created if fin_resolved_at < t <= window_end]
        if handed_over_at is not None and handed_over_at <= window_end:
            candidates.append(handed_over_at)
        came_back_at = min(candidates, default=None)

    return Fact(
        conversation_id=conversation.id,
        user_id=conversation.user_id,
        created_at=conversation.created_at,
        day=conversation.created_at.astimezone(timezone).date(),
        channel=channel_of(conversation, events),
        team_id=conversation.team_id or "",
        agent_id=first_human or "",
        reason=reason,
        handed_over_at=handed_over_at,
        seconds_to_take_over=(
            waited(handed_over_at, taken_over_at)
            if handed_over_at is not None and taken_over_at is not None
            else None
        ),
        seconds_to_first_human_reply=(
            waited(handed_over_at, first_human_reply_at)
            if handed_over_at is not None and first_human_reply_at is not None
            else None
        ),
        resolved_at=status_at,
        seconds_to_resolve=(
            _seconds(conversation.created_at, status_at) if status_at is not None else None
        ),
        fin_resolved_at=fin_resolved_at,
        came_back_at=came_back_at,
        human_handled=handed_over_at is not None or human_owned or human_replies > 0,
        replies=replies,
        human_replies=human_replies,
        csat_score=csat_score if csat_score in (1, 2, 3, 4, 5) else None,
    )
