from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from findesk.agents.models import Agent
from findesk.kit import ids
from findesk.kit.db import Base, JSONType, UTCDateTime
from findesk.kit.html import to_text
from findesk.kit.timeutil import utcnow
from findesk.users.models import EndUser

STATUSES = ("open", "resolved", "closed", "ended")
VISIBILITIES = ("public", "private")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved', 'closed', 'ended')", name="status"),
        # Queues: newest activity first, within status and owner.
        Index(
            "ix_conversations_status_assignee_activity", "status", "assignee_id", "last_activity_at"
        ),
        Index("ix_conversations_activity", "last_activity_at"),
        # A team's queue: its open conversations (``findesk.teams``).
        Index("ix_conversations_team_status", "team_id", "status"),
        # "All" and "Fin is handling": by status, newest first, without sorting every row.
        Index("ix_conversations_status_activity", "status", "last_activity_at"),
        # The snoozed ones only: which are due to wake, how many each queue has set aside.
        Index(
            "ix_conversations_snoozed_until",
            "status",
            "snoozed_until",
            sqlite_where=text("snoozed_until IS NOT NULL"),
            postgresql_where=text("snoozed_until IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: ids.new_id(ids.CONVERSATION)
    )
    object_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    title: Mapped[str | None] = mapped_column(String(1024))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Who answers: the Fin bot agent, a human agent, or nobody (waiting for a human).
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    last_user_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept by the ownership actions for queues and reports (the history has every cycle):
    # Fin's latest handover, the latest time a human took it (from Fin or from the queue), and
    # the first public reply a human ever wrote in it.
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_human_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set aside by an agent until then: out of its queue (in "Snoozed"), back when the waker
    # clears it, the end user writes, or it is resolved. Fin is not told (``snooze``).
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The team whose queue it is in (routing sets it); no foreign key, so that adding it needs
    # no table rebuild on SQLite: deleting a team clears it (``teams.repository.delete``).
    team_id: Mapped[str | None] = mapped_column(String(40))
    # Where the end user talks: ``messenger`` (Fin's Messenger, through the Custom Helpdesk
    # contract) or ``chat`` (findesk's own widget, ``findesk.chat``: Fin never reads it through
    # the Fin API and the notifier never announces it).
    channel: Mapped[str] = mapped_column(
        String(16), default="messenger", server_default="messenger"
    )
    # Whether an SLA policy ever started a timer on it (``findesk.sla``): a conversation that
    # never had one needs no look for its timers on every message.
    sla_timed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    user: Mapped[EndUser] = relationship(lazy="joined", innerjoin=True)
    assignee: Mapped[Agent | None] = relationship(lazy="joined")
    tag_rows: Mapped[list[ConversationTag]] = relationship(
        lazy="selectin",
        order_by="ConversationTag.position",
        cascade="all, delete-orphan",
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class ConversationTag(Base):
    """One row a tag, so that queues can filter by tag on SQLite and PostgreSQL alike."""

    __tablename__ = "conversation_tags"
    __table_args__ = (Index("ix_conversation_tags_tag", "tag", "conversation_id"),)

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("visibility IN ('public', 'private')", name="visibility"),
        CheckConstraint(
            "(author_type = 'end_user' AND author_user_id IS NOT NULL AND author_agent_id IS NULL)"
            " OR (author_type = 'agent' AND author_agent_id IS NOT NULL"
            " AND author_user_id IS NULL)",
            name="author",
        ),
        # get_messages with after_id: an index range scan, whatever the conversation's length.
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
    )

    # Creation order across the whole table; the public id stays opaque.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: ids.new_id(ids.MESSAGE)
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    object_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    message_type: Mapped[str] = mapped_column(String(16), default="comment")
    body: Mapped[str | None] = mapped_column(Text)
    # The body's visible text (``kit.html.to_text``), kept with it: what search indexes and
    # shows in its snippets, never the markup.
    plain_text: Mapped[str | None] = mapped_column(Text)
    author_type: Mapped[str] = mapped_column(String(16))  # end_user | agent
    author_user_id: Mapped[str | None] = mapped_column(ForeignKey("end_users.id"))
    author_agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    visibility: Mapped[str] = mapped_column(String(16), default="public")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Fin wrote it while a human owned the conversation (kept: the end user already saw it).
    after_take_over: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A human's public reply: when Fin first fetched it (get_messages returned it).
    seen_by_fin_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author_user: Mapped[EndUser | None] = relationship(lazy="joined")
    author_agent: Mapped[Agent | None] = relationship(lazy="joined")

    @validates("body")
    def _keep_plain_text(self, _key: str, body: str | None) -> str | None:
        # Whoever sets the body sets its text: search never sees a stale one.
        self.plain_text = to_text(body) if body else None
        return body


class ConversationRead(Base):
    """How far an agent has read a conversation: the seq of the newest message the inbox or the
    agent API showed them when they opened it. It only ever moves forward; a conversation the
    agent never opened has no row. The queues mark it unread for them while it has a later
    message by someone else (``repository.unread_among``)."""

    __tablename__ = "conversation_reads"
    # (The primary key serves each agent's lookups; this, a conversation's cascade.)
    __table_args__ = (Index("ix_conversation_reads_conversation", "conversation_id"),)

    agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    read_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# What a history row may record; later issues add team and SLA kinds.
HistoryKind = Literal[
    "created",
    "handover",
    "take_over",
    "hand_back",
    "assigned",
    "assignment_ignored",
    "status",
    "tags",
    "title",
    "attributes",
    "priority",
    "merge",
    "conversion",
    "macro",
    "snooze",
    "wake",
    "ticket",
    "lookup",  # Fin called a lookup for the conversation (findesk.lookups)
    "rating_requested",  # findesk asked the end user for a rating (findesk.csat)
    "rating",  # the end user rated the conversation: to_value the score (findesk.csat)
    "routed",  # a routing rule matched: detail has the rule (findesk.routing)
    "team",  # the conversation's team changed: from_value and to_value team ids
    "sla_breached",  # an SLA target was missed: to_value the target, detail its policy (sla)
]


class ConversationEvent(Base):
    """One change of a conversation, who made it and what it was before: the durable history.

    Written in the transaction that makes the change; never purged, never edited.
    """

    __tablename__ = "conversation_history"
    __table_args__ = (
        Index("ix_conversation_history_conversation", "conversation_id", "id"),
        Index("ix_conversation_history_at", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(16))  # fin, agent, system
    actor_agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    from_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    to_value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor_agent: Mapped[Agent | None] = relationship(lazy="joined")


class ConversationCount(Base):
    """How many conversations have a status and an assignee: the inbox's queue counts, kept
    current in the transaction of every change that moves a conversation (``counts``), never
    counted over the whole table. Each pair is spread over a few ``shard`` rows, so that
    concurrent changes seldom wait for one another's row lock: only their sum means anything.
    """

    __tablename__ = "conversation_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The assignee's id; '' for nobody (waiting for a human).
    assignee_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
