"""The audit log: who changed agents, credentials, settings, teams, routing rules and SLA
policies, when, and from where.

An entry is written by the action itself, in the transaction that makes the change: a change
that rolls back leaves no entry, and no committed change lacks one. Entries name things by id
and name only; secrets (passwords, tokens, client secrets, their hashes) never go in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.audit import repository
from findesk.audit.models import AuditEntry
from findesk.audit.repository import AuditFilter
from findesk.kit.errors import Invalid
from findesk.kit.timeutil import as_utc, utcnow

__all__ = [
    "ACTIONS",
    "CLI",
    "SYSTEM",
    "AuditActor",
    "AuditFilter",
    "AuditPage",
    "agent_actors",
    "list_entries",
    "parse_moment",
    "record",
    "record_changes",
]

# Every action the log knows, with what a person reads for it.
ACTIONS: dict[str, str] = {
    "agent.created": "Agent created",
    "agent.updated": "Agent changed",
    "agent.deactivated": "Agent deactivated",
    "agent.reactivated": "Agent reactivated",
    "agent.password_set": "Password set",
    "oauth_client.created": "OAuth client created",
    "oauth_client.revoked": "OAuth client revoked",
    "agent_token.issued": "Personal token issued",
    "agent_token.revoked": "Personal token revoked",
    "lookup_token.issued": "Lookup token issued",
    "lookup_token.revoked": "Lookup token revoked",
    "setting.changed": "Setting changed",
    "team.created": "Team created",
    "team.updated": "Team changed",
    "team.deleted": "Team deleted",
    "team.member_added": "Team member added",
    "team.member_removed": "Team member removed",
    "agent.capacity_set": "Agent capacity set",
    "routing_rule.created": "Routing rule created",
    "routing_rule.updated": "Routing rule changed",
    "routing_rule.deleted": "Routing rule deleted",
    "sla_policy.created": "SLA policy created",
    "sla_policy.updated": "SLA policy changed",
    "sla_policy.deleted": "SLA policy deleted",
}
TARGET_TYPES: dict[str, str] = {
    "agent": "Agent",
    "oauth_client": "OAuth client",
    "agent_token": "Personal token",
    "lookup_token": "Lookup token",
    "setting": "Setting",
    "team": "Team",
    "routing_rule": "Routing rule",
    "sla_policy": "SLA policy",
}
# Keys that would hold a secret: refused outright, whatever their value.
_SECRET_KEY = re.compile(r"password|secret|token$|token_hash|_hash$|credential", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AuditActor:
    """Who acts: a signed-in agent (and the address they came from), the CLI, or findesk."""

    kind: Literal["agent", "cli", "system"]
    agent_id: str | None
    label: str
    address: str | None = None

    @classmethod
    def for_agent(cls, agent: Agent, address: str | None) -> AuditActor:
        """An agent signed in to the inbox (or the agent API), from the client's address."""
        return cls("agent", agent.id, agent.email, address)

    @classmethod
    def cli(cls) -> AuditActor:
        """Whoever runs the ``findesk`` command on the server: no agent, no address."""
        return cls("cli", None, "cli")

    @classmethod
    def system(cls) -> AuditActor:
        """findesk itself: seeding, the demo, migrations."""
        return cls("system", None, "system")


CLI = AuditActor.cli()
SYSTEM = AuditActor.system()


def _check_detail(detail: Mapping[str, Any], path: str = "") -> None:
    for key, value in detail.items():
        if _SECRET_KEY.search(key):
            raise ValueError(f"Audit detail must not hold secrets: {path}{key!r}.")
        if isinstance(value, Mapping):
            _check_detail(value, f"{path}{key}.")


def record(
    session: Session,
    actor: AuditActor | None,
    action: str,
    target_type: str,
    target_id: str | None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the session's transaction (``None`` as the actor means findesk itself)."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}.")
    if target_type not in TARGET_TYPES:
        raise ValueError(f"Unknown audit target type {target_type!r}.")
    detail = dict(detail or {})
    _check_detail(detail)
    who = actor or SYSTEM
    entry = AuditEntry(
        at=utcnow(),
        action=action,
        actor_kind=who.kind,
        actor_agent_id=who.agent_id,
        actor_label=who.label,
        address=who.address,
        target_type=target_type,
        target_id=target_id,
        detail=detail,
    )
    repository.add(session, entry)
    return entry


def record_changes(
    session: Session,
    actor: AuditActor | None,
    action: str,
    target_type: str,
    target_id: str,
    name: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    """An entry for a change, naming each field that changed, new (``changed``) and old
    (``was``); none when nothing did."""
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if changed:
        detail = {"name": name, "changed": changed, "was": {k: before.get(k) for k in changed}}
        record(session, actor, action, target_type, target_id, detail)


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: Sequence[AuditEntry]
    # Pass as ``before`` for the next (older) page; None on the last page.
    next_before: int | None


def list_entries(
    session: Session, f: AuditFilter, *, before: int | None = None, limit: int = 50
) -> AuditPage:
    """Newest first, keyset-paginated by entry id."""
    rows = repository.listing(session, f, before=before, limit=limit + 1)
    page = rows[:limit]
    return AuditPage(page, page[-1].id if len(rows) > limit and page else None)


def agent_actors(session: Session) -> Sequence[tuple[str, str]]:
    """Agents that appear in the log as actors: (id, email they acted as), for a filter."""
    return repository.agent_actors(session)


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """An ISO 8601 date or date-time (UTC unless it says otherwise).

    A bare date is the start of that day, or with ``end`` the start of the next (for an
    inclusive "until" day used as an exclusive bound).
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        return as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise Invalid(f"Not a date or ISO 8601 time: {text!r}.") from None
