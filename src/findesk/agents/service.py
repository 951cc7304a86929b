"""Agent actions: creating agents and seeding the bot that represents Fin."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from findesk.agents import repository
from findesk.agents.models import Agent
from findesk.auth.passwords import hash_password
from findesk.auth.web_sessions import sign_out_agent
from findesk.kit.db import insert_once
from findesk.kit.errors import Conflict, Invalid, NotFound
from findesk.kit.schemas import check_email, check_http_url
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
) -> Agent:
    email, name = email.strip().lower(), name.strip()
    try:
        check_email(email)
        check_http_url(photo_url)
    except ValueError as exc:
        raise Invalid(f"Invalid agent: {exc}.") from None
    if not name:
        raise Invalid("An agent needs a name.")
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
    return agent


def ensure_fin_agent(session: Session, email: str) -> Agent:
    """The bot agent that Fin's replies are written as; created on a fresh database."""
    existing = fin_agent(session)
    if existing is not None:
        return existing
    # Several processes may start at once (serve and workers): the email's unique key decides.
    email = email.strip().lower()
    bot = Agent(email=email, name=FIN_AGENT_NAME, alias=FIN_AGENT_NAME, is_bot=True)
    agent, _ = insert_once(session, bot, lambda: repository.get_by_email(session, email))
    return agent


def fin_agent(session: Session) -> Agent | None:
    """The bot agent that owns conversations Fin starts, if one exists."""
    found = repository.bots(session)
    return found[0] if found else None


def set_password(session: Session, agent: Agent, password: str) -> None:
    """Set a new password and end the agent's web sessions."""
    if agent.is_bot:
        raise Invalid("The bot agent that represents Fin cannot sign in.")
    agent.password_hash = hash_password(password)
    agent.updated_at = utcnow()
    sign_out_agent(session, agent.id)
