"""The conversation's timeline: its messages and its history, interleaved in time, each change
told as a sentence ("Alex took over from Fin · 2 min after handover")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from findesk.agents.models import Agent
from findesk.conversations.models import ConversationEvent, Message
from findesk.kit.timeutil import as_utc
from findesk.tickets.models import FIN_ATTRIBUTE as TICKET_ATTRIBUTE

STATUS_WORDS = {
    "open": "reopened it",
    "resolved": "resolved it",
    "closed": "closed it",
    "ended": "ended it",
}
HANDOVER_REASONS = {
    "human_requested": "the customer asked for a person",
    "no_match": "Fin found no answer",
    "unanswered_turns": "Fin could not resolve it",
}
MAX_LISTED_ATTRIBUTES = 4
SLA_TARGETS = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}
SLA_ESCALATIONS = {"raise_priority": "priority raised", "reassign": "reassigned"}
# Who owns it and whose queue it is in: these changes stand out in the timeline.
IMPORTANT = frozenset(
    ("handover", "take_over", "hand_back", "assigned", "assignment_ignored", "team", "sla_breached")
)


@dataclass(frozen=True)
class Entry:
    """A message or a change, in the order they happened."""

    at: datetime
    message: Message | None = None
    event: ConversationEvent | None = None
    text: str = ""
    important: bool = False  # ownership and ignored assignments stand out


def build(
    messages: Iterable[Message],
    events: Iterable[ConversationEvent],
    agents: Mapping[str, Agent],
) -> list[Entry]:
    """Messages and told changes, oldest first; on a tie the change comes first (a reply that
    takes over reads "Alex took over", then Alex's reply)."""
    entries = [Entry(at=m.created_at, message=m) for m in messages]
    for event in events:
        text = describe(event, agents)
        if text:
            entries.append(
                Entry(
                    at=event.at,
                    event=event,
                    text=text,
                    important=event.kind
                    in (
                        "handover",
                        "take_over",
                        "hand_back",
                        "assigned",
                        "assignment_ignored",
                        "team",
                    ),
                )
            )
    entries.sort(key=lambda entry: (entry.at, entry.message is not None))
    return entries


def describe(event: ConversationEvent, agents: Mapping[str, Agent]) -> str:
    """One sentence for a change; empty for what the timeline does not show (the creation)."""
    who = _actor(event, agents)
    kind, before, after, detail = event.kind, event.from_value, event.to_value, event.detail
    if kind == "handover":
        target = "the team" if after is None else _agent(after, agents)
        text = f"{who} handed over to {target}"
        reason = detail.get("reason")
        if reason:
            text += f" · {HANDOVER_REASONS.get(str(reason), str(reason))}"
        return text
    if kind == "take_over":
        waited = detail.get("seconds_after_handover")
        if isinstance(waited, int | float):  # from the queue Fin handed it to
            return f"{who} took over from Fin · {duration(waited)} after handover"
        return f"{who} took over from {_owner(before, agents)}"
    if kind == "hand_back":
        return f"{who} handed it back to {_agent(after, agents)}"
    if kind == "assigned":
        if after is None:
            return f"{who} moved it to the waiting queue"
        return f"{who} assigned it to {_agent(after, agents)}"
    if kind == "assignment_ignored":
        requested = detail.get("requested")
        if requested is None:
            wanted = "hand it over"
        elif _agent(requested, agents) == "Fin":
            wanted = "take it back"
        else:
            wanted = f"assign it to {_agent(requested, agents)}"
        return f"{who} tried to {wanted} · ignored: {_agent(before, agents)} had taken over"
    if kind == "status":
        return f"{who} {STATUS_WORDS.get(str(after), f'set the status to {after}')}"
    if kind == "tags":
        added = [t for t in after or [] if t not in (before or [])]
        removed = [t for t in before or [] if t not in (after or [])]
        parts = []
        if added:
            parts.append("tagged it " + ", ".join(added))
        if removed:
            parts.append("removed " + ", ".join(removed))
        return f"{who} " + " and ".join(parts) if parts else ""
    if kind == "title":
        return f"{who} renamed it “{after}”" if after else f"{who} removed the title"
    if kind == "attributes":
        # The ``ticket`` attribute group tells Fin about a ticket: the "ticket" row says it.
        shown = {k: v for k, v in (after or {}).items() if k != TICKET_ATTRIBUTE}
        return f"{who} set {_attributes(shown)}" if shown else ""
    if kind == "ticket":
        number = detail.get("number")
        if detail.get("action") == "converted":
            return f"{who} converted it to ticket #{number} ({detail.get('type')}) · {after}"
        text = f"{who} moved ticket #{number} from {before} to {after}"
        tracker = detail.get("tracker_number")
        return f"{text} · with tracker ticket #{tracker}" if tracker is not None else text
    if kind == "routed":  # (routing.service: the first rule that matched)
        return f"Routing rule “{detail.get('rule_name') or after}” matched"
    if kind == "team":  # (routing, or an SLA escalation: the team's name as it was then)
        name = detail.get("team_name")
        if after is None:
            return f"{who} took it out of its team's queue"
        return f"{who} put it in the {name} team's queue" if name else f"{who} changed its team"
    if kind == "sla_breached":  # (sla.service.breach: the checker found it past due)
        target = SLA_TARGETS.get(str(after), str(after))
        text = f"SLA missed: {target}"
        if detail.get("policy_name"):
            text += f" · policy “{detail['policy_name']}”"
        escalation = SLA_ESCALATIONS.get(str(detail.get("escalation")))
        return f"{text} · {escalation}" if escalation else text
    if kind == "priority":
        return f"{who} set the priority to {after}" if after is not None else ""
    if kind == "macro":
        return f"{who} applied the macro “{after}”"
    if kind == "snooze":
        until = datetime.fromisoformat(str(after))
        return f"{who} snoozed it for {duration((until - as_utc(event.at)).total_seconds())}"
    if kind == "wake":
        reason = detail.get("reason")
        if reason == "time":
            return "The snooze ended: back in the queue"
        if reason == "end_user":
            return "The customer wrote: back from snooze"
        return f"{who} woke it from snooze"
    if kind == "merge":  # (users.service.merge_into: names as they were then)
        source = detail.get("from_name") or "a visitor"
        target = detail.get("to_name") or "a user"
        return f"{who} merged {source} into {target}: the conversation is {target}'s now"
    if kind == "lookup":  # (lookups.service.answer_call: Fin called a lookup for it)
        return f"{who} looked up {detail.get('summary') or 'something'}"
    if kind == "rating":  # (csat.service.rate: the end user rated it on the rating page)
        comment = detail.get("comment")
        return f"Rated {after}/5: “{comment}”" if comment else f"Rated {after}/5"
    if kind == "conversion":
        return f"{who} converted it"
    return ""


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _actor(event: ConversationEvent, agents: Mapping[str, Agent]) -> str:
    if event.actor == "fin":
        return "Fin"
    if event.actor == "system":
        return "findesk"
    return _agent(event.actor_agent_id, agents)


def _agent(agent_id: Any, agents: Mapping[str, Agent]) -> str:
    agent = agents.get(str(agent_id)) if agent_id is not None else None
    if agent is None:
        return "an agent" if agent_id is not None else "nobody"
    return "Fin" if agent.is_bot else agent.name


def _owner(agent_id: Any, agents: Mapping[str, Agent]) -> str:
    return "the waiting queue" if agent_id is None else _agent(agent_id, agents)


def _attributes(values: Mapping[str, Any]) -> str:
    shown = [
        f"{key} {'removed' if value is None else f'to {value}'}"
        for key, value in list(values.items())[:MAX_LISTED_ATTRIBUTES]
    ]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
