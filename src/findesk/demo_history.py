"""Four weeks of past conversations for the demo, so that its reports have something to say.

Each conversation is made through the domain services, as Fin and the demo agent would make it
(answered and resolved by Fin after a thank-you, or handed over with Fin's reason, taken over,
answered and resolved by the agent, and sometimes rated), and then moved into the past: every
history event, message and timestamp of it is given a plausible time on its day, in the order
it happened. All of them end resolved or closed, so that the demo's queues stay as they were.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from findesk.agents.models import Agent
from findesk.conversations import service as conversations
from findesk.conversations.models import Conversation, ConversationEvent, Message
from findesk.conversations.service import Author, NewMessage
from findesk.csat import service as csat
from findesk.csat.models import CsatRating
from findesk.kit.actor import FIN, SYSTEM
from findesk.kit.actor import agent as agent_actor
from findesk.kit.timeutil import utcnow
from findesk.users import repository as user_repository
from findesk.users.service import create_user

DAYS = 28
PREFIX = "demo-history-"
QUESTIONS = (
    "<p>How do I change my billing email?</p>",
    "<p>Can I export my conversations as CSV?</p>",
    "<p>Where do I find my invoices?</p>",
    "<p>How do I add a teammate?</p>",
    "<p>Is there an API rate limit?</p>",
)
REASONS = ("human_requested", "human_requested", "no_match", "unanswered_turns")
_TOKEN = re.compile(r"/rate/(rate_[\w-]+)")


def seed_history(session: Session, fin: Agent, agent: Agent) -> int:
    """The past conversations, once (none when the first is there already); how many."""
    if user_repository.get_by_object_id(session, f"{PREFIX}0") is not None:
        return 0
    rng = random.Random(DAYS)  # noqa: S311 (the same demo every time; nothing secret)
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    made = 0
    for days_ago in range(DAYS, 0, -1):
        day = today - timedelta(days=days_ago)
        for _ in range(rng.randint(4, 9) if day.weekday() < 5 else rng.randint(1, 3)):
            start = day + timedelta(hours=8, minutes=rng.uniform(0, 600))
            _past_conversation(session, made, start, rng, fin, agent)
            made += 1
    return made


def _past_conversation(
    session: Session, n: int, start: datetime, rng: random.Random, fin: Agent, agent: Agent
) -> None:
    user, _ = create_user(session, object_id=f"{PREFIX}{n}", name=f"Customer {n + 1}",
                          email=f"customer{n + 1}@example.com")  # fmt: skip
    conversation, _, _ = conversations.open_conversation(
        session, user_id=user.id, assignee_id=fin.id, actor=FIN,
        first=NewMessage(author=Author("end_user", user.id), body=rng.choice(QUESTIONS)),
    )  # fmt: skip
    cid = conversation.id

    def says(author: Author, body: str, actor: Any = FIN) -> None:
        conversations.add_message(session, cid, NewMessage(author=author, body=body), actor)

    says(Author("agent", fin.id), "<p>Here is how, from our help centre.</p>")
    roll = rng.random()
    if roll < 0.55:  # the end user thanks Fin, which resolves
        says(Author("end_user", user.id), "<p>Thanks, that helped!</p>")
        conversations.update_conversation(session, cid, {"status": "resolved"}, FIN)
    elif roll < 0.9:  # Fin hands over; the agent takes over, answers and resolves
        reason = rng.choice(REASONS)
        conversations.update_conversation(
            session, cid, {"attributes": {"fin_handover_reason": reason}}, FIN
        )
        conversations.hand_over(session, cid, FIN)
        person = agent_actor(agent.id)
        conversations.take_over(session, cid, agent.id, person)
        says(Author("agent", agent.id), "<p>Thanks for waiting, I have sorted it out.</p>", person)
        conversations.update_conversation(session, cid, {"status": "resolved"}, person)
        asked = session.scalars(
            select(Message.body).where(Message.conversation_id == cid).order_by(Message.seq.desc())
        ).first()
        token = _TOKEN.search(asked or "")
        if token is not None and rng.random() < 0.6:
            csat.rate(session, token[1], rng.choice((5, 5, 5, 4, 4, 3, 2, 1)), None)
    else:  # answered; nobody wrote again, and it was closed at the end of the day
        conversations.update_conversation(session, cid, {"status": "closed"}, SYSTEM)
    _move_into_the_past(session, cid, start, rng)


def _move_into_the_past(session: Session, cid: str, start: datetime, rng: random.Random) -> None:
    """Give the conversation's events and messages, in the order they were made, the times they
    would have had from ``start`` on, and its columns the matching times."""
    session.flush()
    events = session.scalars(
        select(ConversationEvent).where(ConversationEvent.conversation_id == cid)
    ).all()
    messages = session.scalars(select(Message).where(Message.conversation_id == cid)).all()
    rows: list[Any] = sorted([*events, *messages], key=_made_at)
    at = start
    times: dict[str, datetime] = {}
    for row in rows:
        at += _pause(row, rng)
        if isinstance(row, ConversationEvent):
            row.at = at
            times.setdefault(row.kind, at)
            times[f"last_{row.kind}"] = at
        else:
            row.created_at = at
            if row.author_type == "agent" and row.author_agent_id and "first_reply" not in times:
                if "take_over" in times:
                    times["first_reply"] = at
    values: dict[str, Any] = {"created_at": start, "updated_at": at, "last_activity_at": at}
    if "handover" in times:
        values |= {"handed_over_at": times["handover"], "taken_over_at": times.get("take_over"),
                   "first_human_reply_at": times.get("first_reply")}  # fmt: skip
    session.execute(update(Conversation).where(Conversation.id == cid).values(**values))
    rating = session.get(CsatRating, cid)
    if rating is not None:
        rating.requested_at = times.get("rating_requested", at)
        if rating.rated_at is not None:
            rating.rated_at = times.get("rating", at)


def _made_at(row: Any) -> tuple[datetime, int]:
    if isinstance(row, ConversationEvent):
        return (row.at, 1)
    return (row.created_at, 0)


def _pause(row: Any, rng: random.Random) -> timedelta:
    """How long after the row before it this one happened."""
    if isinstance(row, Message):
        seconds = rng.uniform(5, 40) if row.author_type == "agent" else rng.uniform(20, 300)
        if row.author_type == "agent" and row.visibility == "public":
            seconds = rng.expovariate(1 / 240)
        return timedelta(seconds=seconds)
    pauses = {"take_over": rng.expovariate(1 / 420), "status": rng.expovariate(1 / 1800),
              "rating": rng.uniform(300, 7200), "handover": rng.uniform(20, 90)}  # fmt: skip
    return timedelta(seconds=pauses.get(row.kind, 0.5))
