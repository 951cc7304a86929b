"""Agent actions: creating, deactivating and reactivating agents, passwords, and seeding the bot
that represents Fin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from findesk.agents import repository
from findesk.agents.models import Agent
from findesk.audit import service as audit
from findesk.audit.service import AuditActor
from findesk.auth import service as auth
from findesk.auth.passwords import hash_password
from findesk.auth.web_sessions import sign_out_agent
from findesk.conversations import service as conversations
from findesk.conversations.repository import ConversationFilter
from findesk.kit.actor import SYSTEM as SYSTEM_ACTOR
from findesk.kit.actor import agent as agent_actor
from findesk.kit.db import insert_once
from findesk.kit.errors import Conflict, Invalid, NotFound, Problem
from findesk.kit.schemas import check_email, check_http_url
from findesk.kit.text import NAME_MAX, clean_optional, clean_text, invalid
from findesk.kit.timeutil import utcnow

FIN_AGENT_NAME = "Fin"
ROLES = ("agent", "admin")


def get_agent(session: Session, agent_id: str) -> Agent:
    agent = repository.get(session, agent_id)
    if agent is None:
        raise NotFound(f"No agent with id {agent_id!r}.")
    return agent


def list_agents(session: Session) -> Sequence[Agent]:
    return repository.list_active(session)


def create_agent(
    session: Session,
    *,
    email: str,
    name: str,
    alias: str | None = None,
    photo_url: str | None = None,
    role: str = "agent",
    is_bot: bool = False,
    password: str | None = None,
    by: AuditActor | None = None,
) -> Agent:
    """Create an agent; ``by`` is who does it, for the audit log (None: findesk itself)."""
    email = email.strip().lower()
    try:
        check_email(email)
        check_http_url(photo_url)
    except ValueError as exc:
        raise Invalid(f"Invalid agent: {exc}.") from None
    name = clean_text(name, field="name", max_length=NAME_MAX, label="The agent's name")
    alias = clean_optional(alias, field="alias", max_length=NAME_MAX, label="The agent's alias")
    if not name:
        raise invalid("An agent needs a name.", field="name")
    if role not in ROLES:
        raise Invalid(f"Role must be one of {', '.join(ROLES)}.")
    if repository.get_by_email(session, email) is not None:
        raise Conflict(f"An agent with email {email!r} exists already.")
    agent = Agent(
        email=email,
        name=name,
        alias=alias,
        photo_url=photo_url,
        role=role,
        is_bot=is_bot,
        password_hash=hash_password(password) if password is not None else None,
    )
    session.add(agent)
    session.flush()
    audit.record(session, by, "agent.created", "agent", agent.id, _described(agent))
    return agent


def _described(agent: Agent) -> dict[str, object]:
    """What the audit log keeps about an agent: who it is, never its password."""
    detail: dict[str, object] = {"email": agent.email, "name": agent.name, "role": agent.role}
    if agent.alias:
        detail["alias"] = agent.alias
    if agent.is_bot:
        detail["bot"] = True
    detail["can_sign_in"] = agent.password_hash is not None
    return detail


def ensure_fin_agent(session: Session, email: str) -> Agent:
    """The bot agent that Fin's replies are written as; created on a fresh database."""
    existing = fin_agent(session)
    if existing is not None:
        return existing
    # Several processes may start at once (serve and workers): the email's unique key decides.
    email = email.strip().lower()
    bot = Agent(email=email, name=FIN_AGENT_NAME, alias=FIN_AGENT_NAME, is_bot=True)
    agent, created = insert_once(session, bot, lambda: repository.get_by_email(session, email))
    if created:
        audit.record(session, None, "agent.created", "agent", agent.id, _described(agent))
    return agent


def fin_agent(session: Session) -> Agent | None:
    """The bot agent that owns conversations Fin starts, if one exists."""
    found = repository.bots(session)
    return found[0] if found else None


def set_password(
    session: Session, agent: Agent, password: str, *, by: AuditActor | None = None
) -> None:
    """Set a new password; end the agent's web sessions and revoke its personal tokens (a
    password is changed when it may have leaked, and the tokens with it)."""
    if agent.is_bot:
        raise Invalid("The bot agent that represents Fin cannot sign in.")
    agent.password_hash = hash_password(password)
    agent.updated_at = utcnow()
    sign_out_agent(session, agent.id)
    audit.record(session, by, "agent.password_set", "agent", agent.id, {"email": agent.email})
    auth.revoke_agent_tokens(session, agent, reason="password changed", by=by)


def has_active_admin(session: Session) -> bool:
    """Whether a human administrator can sign in (a fresh install has none)."""
    return bool(repository.active_admin_ids(session))


@dataclass(frozen=True)
class Deactivation:
    agent: Agent
    tokens_revoked: int
    # Open conversations it owned, now waiting for a human again.
    unassigned_conversation_ids: list[str]


def deactivate_agent(
    session: Session, agent_id: str, *, by: AuditActor | None = None
) -> Deactivation:
    """Stop an agent: it cannot sign in or use its tokens (sessions ended, tokens revoked) and
    cannot be assigned; its open conversations go back to the waiting queue. Its messages and
    history stay. Deactivating an inactive agent changes nothing."""
    agent = get_agent(session, agent_id)
    refusal = deactivation_refusal(session, agent, lock=True)
    if refusal is not None:
        raise refusal
    agent = repository.get_locked(session, agent_id) or agent
    if not agent.active:
        return Deactivation(agent, 0, [])
    agent.active = False
    agent.updated_at = utcnow()
    sign_out_agent(session, agent.id)
    tokens = auth.revoke_agent_tokens(session, agent, reason="agent deactivated", by=by)
    released = _release_conversations(session, agent, by)
    detail = {
        "email": agent.email,
        "name": agent.name,
        "tokens_revoked": tokens,
        "conversations_unassigned": len(released),
    }
    audit.record(session, by, "agent.deactivated", "agent", agent.id, detail)
    return Deactivation(agent, tokens, released)


def deactivation_refusal(session: Session, agent: Agent, *, lock: bool = False) -> Problem | None:
    """Why the agent cannot be deactivated (the bot, the last active administrator), or None.
    ``lock`` locks the administrators' rows, in one order: two admins deactivating each other
    at once take turns."""
    if agent.is_bot:
        return Invalid(
            "The bot agent that represents Fin cannot be deactivated: Fin's replies are "
            "written as it.",
            code="bot_agent",
        )
    if agent.role == "admin":
        admins = repository.active_admin_ids(session, lock=lock)
        if agent.active and not [a for a in admins if a != agent.id]:
            return Conflict(
                f"{agent.email} is the last active administrator: make another agent an "
                "administrator first, so that someone can still manage findesk.",
                code="last_admin",
            )
    return None


def _release_conversations(session: Session, agent: Agent, by: AuditActor | None) -> list[str]:
    """Give the agent's open conversations to nobody, through the assignment action, so that
    their history and Fin (the webhook) hear of it, said by whoever deactivates the agent."""
    actor = agent_actor(by.agent_id) if by is not None and by.agent_id else SYSTEM_ACTOR
    mine = ConversationFilter(owner="mine", agent_id=agent.id, statuses=("open",))
    released: list[str] = []
    while True:
        batch = [
            c.id
            for c in conversations.list_conversations(session, mine, limit=100)
            if c.id not in released
        ]
        if not batch:
            return released
        for conversation_id in batch:
            conversations.update_conversation(
                session, conversation_id, {"assignee_id": None}, actor
            )
            released.append(conversation_id)


def reactivate_agent(session: Session, agent_id: str, *, by: AuditActor | None = None) -> Agent:
    """Let a deactivated agent sign in again (with its password; its old tokens stay revoked)."""
    agent = repository.get_locked(session, agent_id)
    if agent is None:
        raise NotFound(f"No agent with id {agent_id!r}.")
    if agent.active:
        return agent
    agent.active = True
    agent.updated_at = utcnow()
    audit.record(session, by, "agent.reactivated", "agent", agent.id, {"email": agent.email})
    return agent
