"""Demo data for ``make run``: a human agent, an OAuth client for Fin and a few conversations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from findesk.agents import repository as agent_repository
from findesk.agents.service import create_agent, ensure_fin_agent, set_password
from findesk.auth import repository as auth_repository
from findesk.auth.service import create_agent_token, create_client, revoke_client
from findesk.conversations import service as conversations
from findesk.conversations.service import Author, NewMessage
from findesk.kit.actor import FIN, SYSTEM
from findesk.users import repository as user_repository
from findesk.users.service import create_user

DEMO_AGENT_EMAIL = "alex@example.com"
DEMO_CLIENT_NAME = "Fin (demo)"

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


@dataclass
class DemoCredentials:
    agent_email: str
    agent_password: str
    agent_token: str
    client_id: str
    client_secret: str


def seed(session: Session, fin_agent_email: str) -> DemoCredentials:
    """Idempotent for data; issues fresh credentials each time (secrets are never stored)."""
    fin = ensure_fin_agent(session, fin_agent_email)
    agent = agent_repository.get_by_email(session, DEMO_AGENT_EMAIL) or create_agent(
        session, email=DEMO_AGENT_EMAIL, name="Alex Rivera", alias="Alex", role="admin"
    )
    for client in auth_repository.list_clients(session):
        if client.name == DEMO_CLIENT_NAME and client.revoked_at is None:
            revoke_client(session, client.id)
    client, secret = create_client(session, DEMO_CLIENT_NAME)
    token = create_agent_token(session, agent)
    password = secrets.token_urlsafe(9)
    set_password(session, agent, password)
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
    return DemoCredentials(DEMO_AGENT_EMAIL, password, token, client.id, secret)
