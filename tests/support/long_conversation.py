"""Long conversations for the paging and get_messages tests: thousands of messages inserted in
bulk (the domain services would take minutes), shaped as findesk stores them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from findesk.conversations.models import ConversationEvent, Message
from findesk.kit import ids
from findesk.kit.db import Database
from findesk.kit.timeutil import isoformat, utcnow
from support.fin import World, unique

# Sanitised HTML as findesk stores it, with what JSON encoders treat differently: non-ASCII
# (accents, CJK, emoji, a character outside the BMP), quotes, backslashes, entities, a newline.
BODIES = (
    "<p>Grüße aus Köln! Die Rechnung Nr. 2041 wurde doppelt abgebucht.</p>",
    '<p>请帮我查一下订单 👋 — "quoted", back\\slash, &amp; &lt;tags&gt;</p>',
    '<p><b>Refund approved</b>. See <a href="https://example.com/refunds">the policy</a>.</p>',
    "<ul><li>one</li><li><i>two</i> <code>x &lt; y</code></li></ul>\n<p>𝄞 ça va ?</p>",
)


@dataclass(frozen=True)
class Seeded:
    ids: list[str]  # the messages inserted, in creation order
    times: list[datetime]  # their created_at, one a second


def add_messages(
    db: Database,
    conversation_id: str,
    count: int,
    *,
    user_id: str,
    fin_agent_id: str,
    human_agent_id: str,
    start: datetime | None = None,
) -> Seeded:
    """Append ``count`` messages a second apart from ``start`` (now by default): the end user,
    Fin and the human agent in turn; every fourth of the agent's a private note; every seventh
    message with attachments (every 14th with no body at all)."""
    start = start or utcnow()
    rows: list[dict[str, Any]] = []
    for n in range(count):
        turn = n % 3
        attachments: list[dict[str, Any]] = []
        if n % 7 == 0:
            attachments = [
                {
                    "url": f"https://files.example.com/{n}/guide.pdf",
                    "filetype": "pdf",
                    "filename": "Pricing Guide 2025",
                },
                {"url": f"https://files.example.com/{n}/screen shot.png", "filetype": "png"},
            ]
        rows.append(
            {
                "id": ids.new_id(ids.MESSAGE),
                "conversation_id": conversation_id,
                "message_type": "comment",
                "body": None if n % 14 == 0 else f"{BODIES[n % len(BODIES)]}<p>#{n}</p>",
                "author_type": "end_user" if turn == 0 else "agent",
                "author_user_id": user_id if turn == 0 else None,
                "author_agent_id": None if turn == 0 else (fin_agent_id, human_agent_id)[turn - 1],
                "visibility": "private" if turn == 2 and n % 4 == 2 else "public",
                "attachments": attachments,
                "created_at": start + timedelta(seconds=n),
            }
        )
    with db.transaction() as session:  # a writer's BEGIN IMMEDIATE, queued with the server's
        session.execute(insert(Message.__table__), rows)
    with db.read_session() as session:
        stored = session.execute(
            select(Message.id, Message.created_at)
            .where(Message.id.in_([row["id"] for row in rows]))
            .order_by(Message.seq)
        ).all()
    assert [row.id for row in stored] == [row["id"] for row in rows], "inserted out of order"
    return Seeded([row.id for row in stored], [row.created_at for row in stored])


@dataclass(frozen=True)
class Long:
    id: str
    user_id: str
    message_ids: list[str]  # every message, in creation order
    times: list[datetime]  # when each was written, one a second, all in the past


def open_long(world: World, db: Database, count: int, *, human_agent_id: str, **user: Any) -> Long:
    """A conversation that Fin opened through its API, of ``count`` messages (the first one
    and ``add_messages``), written a second apart and ending a minute ago: what happens next
    comes after them."""
    end_user = world.user(**user)
    started = utcnow() - timedelta(seconds=count + 60)
    reply = world.api.create_conversation(
        user_id=end_user["id"],
        object_id=unique("c"),
        title=unique("Long"),
        initial_message={
            "body": "<p>Première question ✓</p>",
            "author": {"id": end_user["id"], "user_type": "end_user"},
            "object_id": unique("m"),
            "created_at": isoformat(started),
        },
    )
    assert reply.status == 201, reply.error
    first = reply.data["initial_message"]
    more = add_messages(
        db,
        reply.data["conversation"]["id"],
        count - 1,
        user_id=end_user["id"],
        fin_agent_id=world.fin_agent_id,
        human_agent_id=human_agent_id,
        start=started + timedelta(seconds=1),
    )
    return Long(
        reply.data["conversation"]["id"],
        end_user["id"],
        [first["id"], *more.ids],
        [datetime.fromisoformat(first["created_at"]), *more.times],
    )


def add_change(db: Database, conversation_id: str, at: datetime, tag: str) -> int:
    """A change in the conversation's history at ``at`` (a tag added); its id."""
    with db.transaction() as session:
        event = ConversationEvent(
            conversation_id=conversation_id,
            kind="tags",
            actor="fin",
            from_value=[],
            to_value=[tag],
            detail={},
            at=at,
        )
        session.add(event)
        session.flush()
        return event.id
