"""Demo data for ``make run``: a human agent, an OAuth client for Fin, two teams with their
routing rules, a few conversations, four weeks of past ones for the reports (``demo_history``)
and a few published help articles (which findesk then publishes to the emulated Fin).

Seeding again never breaks a demo that runs: findesk stores only hashes of secrets, so the
demo's credentials are kept in a file of the data folder (readable by its owner only) and reused
while they still work; only what no longer works (a revoked client, say) is made anew, and
nothing is revoked or reset.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.models import Agent
from findesk.agents.service import create_agent, ensure_fin_agent, set_password
from findesk.auth.passwords import verify_password
from findesk.auth.service import (
    InvalidClient,
    authenticate_agent_token,
    check_client,
    create_agent_token,
    create_client,
)
from findesk.conversations import service as conversations
from findesk.conversations.service import Author, NewMessage
from findesk.demo_history import seed_history
from findesk.kit.actor import FIN, SYSTEM
from findesk.kit.errors import Problem
from findesk.knowledge import repository as article_repository
from findesk.knowledge.service import ArticleDraft, create_article
from findesk.routing import service as routing
from findesk.routing.schemas import RuleIn
from findesk.sla import service as sla
from findesk.sla.schemas import PolicyIn
from findesk.teams import repository as team_repository
from findesk.teams import service as teams
from findesk.users import repository as user_repository
from findesk.users.service import create_user

DEMO_AGENT_EMAIL = "alex@example.com"
DEMO_CLIENT_NAME = "Fin (demo)"
CREDENTIALS_FILE = "demo-credentials.json"  # in the data folder

CONVERSATIONS = [
    # (user object_id, name, email, title, first message, Fin's answer, outcome)
    (
        "demo-user-1",
        "Jane Doe",
        "jane@example.com",
        "Question about pricing plans",
        "<p>Hi! What does the Pro plan cost per seat?</p>",
        "<p>The Pro plan is <b>$29 per seat</b> per month, billed yearly.</p>",
        "resolved",
    ),
    (
        "demo-user-2",
        "Sam Lee",
        "sam@example.com",
        "Refund for a double charge",
        "<p>I was charged twice this month. Can I get a refund?</p>",
        "<p>I'm sorry about that. Let me get a teammate who can look at your invoices.</p>",
        "handed_over",
    ),
    (
        "demo-user-3",
        "Priya Patel",
        "priya@example.com",
        "Exporting my data",
        "<p>How do I export all my conversations?</p>",
        "<p>Go to <b>Settings → Export</b> and pick CSV or JSON.</p>",
        "fin",
    ),
]


ARTICLES = [
    # (slug, title, Markdown body)
    (
        "refunds-and-double-charges",
        "Refunds and double charges",
        "If you were charged twice, the duplicate charge is refunded automatically within "
        "24 hours.\n\nRefunds are paid back to the original card within **5 business days** "
        "of approval. You can follow a refund under *Billing → Invoices*.",
    ),
    (
        "pricing-plans",
        "Pricing plans",
        "## Plans\n\nThe **Starter** plan is free for up to 3 seats. The **Pro** plan costs "
        "$29 per seat per month, billed yearly, or $35 billed monthly. **Enterprise** pricing "
        "is quoted by our sales team.",
    ),
    (
        "exporting-your-data",
        "Exporting your data",
        "Go to *Settings → Export* and choose CSV or JSON. The export includes every "
        "conversation, contact and tag; large exports are emailed to you as a download link.",
    ),
    (
        "resetting-your-password",
        "Resetting your password",
        "Click **Forgot password** on the sign-in page and enter your email address. The reset "
        "link we send you is valid for 30 minutes. Single sign-on users reset their password "
        "with their identity provider instead.",
    ),
]


@dataclass
class DemoCredentials:
    agent_email: str
    agent_password: str | None  # None: set before, and not known to this seeding
    agent_token: str
    client_id: str
    client_secret: str
    fin_agent_id: str


def load_credentials(path: Path) -> dict[str, str]:
    """What an earlier seeding saved; nothing when there is no such file or it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def save_credentials(path: Path, creds: DemoCredentials) -> None:
    """Readable and writable by its owner only (0600), and replaced whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(creds).items() if v is not None}
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    os.chmod(partial, 0o600)  # O_CREAT's mode applies only to a file it creates
    os.replace(partial, path)


def seed(
    session: Session, fin_agent_email: str, saved: Mapping[str, str] | None = None
) -> DemoCredentials:
    """Idempotent: data already there is kept, and so are the credentials in ``saved`` (what
    an earlier seeding returned) while they work; never revokes or resets anything."""
    saved = saved or {}
    fin = ensure_fin_agent(session, fin_agent_email)
    agent = agent_repository.get_by_email(session, DEMO_AGENT_EMAIL) or create_agent(
        session, email=DEMO_AGENT_EMAIL, name="Alex Rivera", alias="Alex", role="admin"
    )
    client_id, client_secret = _demo_client(session, saved)
    # The password first: setting one revokes the agent's personal tokens.
    password = _agent_password(session, agent, saved.get("agent_password"))
    token = _agent_token(session, agent, saved.get("agent_token"))
    _seed_teams(session, agent)
    for object_id, name, email, title, question, answer, outcome in CONVERSATIONS:
        if user_repository.get_by_object_id(session, object_id) is not None:
            continue
        user, _ = create_user(
            session, object_id=object_id, name=name, email=email, attributes={"plan": "pro"}
        )
        conversation, _, _ = conversations.open_conversation(
            session,
            user_id=user.id,
            title=title,
            assignee_id=fin.id,
            actor=FIN,
            first=NewMessage(author=Author("end_user", user.id), body=question),
        )
        conversations.add_message(
            session, conversation.id, NewMessage(author=Author("agent", fin.id), body=answer), FIN
        )
        if outcome == "resolved":
            conversations.update_conversation(session, conversation.id, {"status": "resolved"}, FIN)
        elif outcome == "handed_over":
            conversations.hand_over(session, conversation.id, SYSTEM)
    seed_history(session, fin, agent)  # four weeks behind the reports
    for slug, title, body in ARTICLES:
        if article_repository.slug_taken(session, slug):
            continue
        create_article(
            session,
            ArticleDraft(title=title, body=body, slug=slug, state="published"),
            author_id=agent.id,
        )
    return DemoCredentials(DEMO_AGENT_EMAIL, password, token, client_id, client_secret, fin.id)


# The demo's teams, each with the routing rule that fills its queue from what the emulated Fin
# detected (its handover tag: ``emulator.answerer.ISSUE_TYPES``) and an SLA policy (first human
# reply within 30 minutes of the handover, resolved within a day; a breach raises the priority).
# Alex is in Billing.
DEMO_TEAMS = (("Billing", "billing"), ("Shipping", "shipping"))


def _seed_teams(session: Session, agent: Agent) -> None:
    for name, tag in DEMO_TEAMS:
        if team_repository.get_by_name(session, name) is not None:
            continue
        members = [agent.id] if name == "Billing" else []
        team = teams.create_team(session, name=name, member_ids=members)
        routing.create_rule(
            session,
            RuleIn.model_validate(
                {
                    "name": f"{name} questions to the {name} team",
                    "conditions": [{"field": "tag", "op": "is", "value": tag}],
                    "actions": {"team_id": team.id},
                }
            ),
        )
        sla.create_policy(
            session,
            PolicyIn(
                name=f"{name}: reply in 30 minutes",
                team_id=team.id,
                first_response_minutes=30,
                resolution_minutes=24 * 60,
                escalation="raise_priority",
            ),
        )


def _demo_client(session: Session, saved: Mapping[str, str]) -> tuple[str, str]:
    """The saved client while it works (Fin may be using it); else a new one beside it."""
    client_id, secret = saved.get("client_id"), saved.get("client_secret")
    if client_id and secret:
        try:
            check_client(session, client_id, secret)
            return client_id, secret
        except InvalidClient:
            pass
    client, secret = create_client(session, DEMO_CLIENT_NAME)
    return client.id, secret


def _agent_token(session: Session, agent: Agent, saved: str | None) -> str:
    if saved:
        try:
            if authenticate_agent_token(session, saved).id == agent.id:
                return saved
        except Problem:
            pass
    return create_agent_token(session, agent)


def _agent_password(session: Session, agent: Agent, saved: str | None) -> str | None:
    """The saved password while it is the agent's; a new one only for an agent that has none
    (setting one signs the agent out everywhere, so a password set otherwise is kept)."""
    if saved and verify_password(agent.password_hash, saved):
        return saved
    if agent.password_hash is not None:
        return None
    password = secrets.token_urlsafe(9)
    set_password(session, agent, password)
    return password
