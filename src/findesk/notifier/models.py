from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base, UTCDateTime
from findesk.kit.timeutil import utcnow

FIN_KIND = "fin"  # an event Fin must hear about; the other kinds are alerts and the chat's


class OutboxEvent(Base):
    """A sync event Fin must hear about, written in the transaction that made the change."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_state_due", "state", "next_attempt_at"),
        # The same for every kind but Fin's: what a worker claims while Fin is not configured
        # (Fin's events wait for it, however many).
        Index(
            "ix_outbox_events_others_due",
            "state",
            "next_attempt_at",
            sqlite_where=text(f"kind <> '{FIN_KIND}'"),
            postgresql_where=text(f"kind <> '{FIN_KIND}'"),
        ),
        # A conversation's pending events, and whether one waits out a back-off (the claim asks
        # it of every due event: with next_attempt_at here it is one probe, not a walk).
        Index("ix_outbox_events_conversation_due", "conversation_id", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    conversation_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The retry window runs from the first failed attempt, not from the change: events recorded
    # while Fin was not configured yet get their full window once it is.
    first_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The worker delivering it, and until when; a crashed worker's lease simply runs out.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Stable across retries, sent as X-Findesk-Delivery so one delivery can be traced.
    delivery_id: Mapped[str | None] = mapped_column(String(40))
    # What the delivery is: ``fin`` (the webhook to Fin: ``conversation_id`` is the
    # conversation) or an alert kind (``alerts.delivery``: ``conversation_id`` is then the
    # delivery's grouping key and ``payload`` what to send).
    kind: Mapped[str] = mapped_column(String(16), default=FIN_KIND, server_default=FIN_KIND)
    payload: Mapped[str | None] = mapped_column(Text)


class TypingSignal(Base):
    """When an agent's typing in a conversation was last sent to Fin, by any process: what
    throttles typing events across processes (``notifier.typing``). Rows older than the
    throttle mean nothing and are pruned."""

    __tablename__ = "typing_signals"

    conversation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
