"""Demo data for ``make run``: a human agent, an OAuth client for Fin, a few conversations and
a few published help articles (which findesk then publishes to the emulated Fin)."""

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
from findesk.knowledge import repository as article_repository
from findesk.knowledge.service import ArticleDraft, create_article
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
    agent_password: str
    agent_token: str
    client_id: str
    client_secret: str
    fin_agent_id: str


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
    for slug, title, body in ARTICLES:
        if article_repository.slug_taken(session, slug):
            continue
        create_article(
            session,
            ArticleDraft(title=title, body=body, slug=slug, state="published"),
            author_id=agent.id,
        )
    return DemoCredentials(DEMO_AGENT_EMAIL, password, token, client.id, secret, fin.id)
