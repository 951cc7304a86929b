"""What the emulated Fin remembers, on disk: Messenger visitors, their conversations, and every
public message Fin has seen. It is the sync engine's ``Memory`` (so ``after_id`` and the messages
already seen survive a restart) and the Messenger's source of truth.

Its own small SQLite file and ``MetaData``, like the content store: this is Intercom's side.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from findesk.emulator.sync import Owner, Seen, absorb


class TranscriptBase(DeclarativeBase):
    metadata = MetaData()


class VisitorRow(TranscriptBase):
    __tablename__ = "visitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    object_id: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)  # the helpdesk's id, once known
    created_at: Mapped[float] = mapped_column()


class ConversationRow(TranscriptBase):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # the helpdesk's id
    visitor_id: Mapped[int | None] = mapped_column(ForeignKey("visitors.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(Text)
    last_id: Mapped[str | None] = mapped_column(Text)  # after_id for the next fetch
    owner: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))  # open, resolved, closed, ended
    created_at: Mapped[float] = mapped_column()
    updated_at: Mapped[float] = mapped_column()


class MessageRow(TranscriptBase):
    __tablename__ = "messages"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(Text, unique=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    payload: Mapped[str] = mapped_column(Text)  # the message as the helpdesk returned it


@dataclass(frozen=True)
class Visitor:
    id: int
    object_id: str
    name: str
    email: str
    user_id: str | None


@dataclass(frozen=True)
class ConversationState:
    id: str
    owner: str | None
    version: int
    messages: list[dict[str, Any]]
    status: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TranscriptStore:
    """Thread-safe; one process. ``version(conversation_id)`` moves on every change, for the
    Messenger's live stream to notice."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", _sqlite_pragmas)
        TranscriptBase.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        self._lock = threading.RLock()
        self._seen: dict[str, Seen] = {}
        self._versions: dict[str, int] = {}
        self._listeners: list[Callable[[str, list[dict[str, Any]]], None]] = []

    def on_new_messages(self, listener: Callable[[str, list[dict[str, Any]]], None]) -> None:
        """Call ``listener(conversation_id, messages)`` with the public messages each
        ``remember`` stores for the first time (after they are committed)."""
        self._listeners.append(listener)

    def close(self) -> None:
        self.engine.dispose()

    # --- visitors ---

    def new_visitor(self, name: str, email: str) -> tuple[Visitor, str]:
        """A new Messenger visitor and the secret token of their cookie (stored hashed)."""
        token = secrets.token_urlsafe(32)
        with self._lock, Session(self.engine) as session:
            row = VisitorRow(
                token_hash=_hash(token),
                object_id=f"messenger-{secrets.token_hex(8)}",
                name=name,
                email=email,
                created_at=time.time(),
            )
            session.add(row)
            session.commit()
            return _visitor(row), token

    def visitor_by_token(self, token: str) -> Visitor | None:
        # A lookup by hash: the hash of a random 256-bit token leaks nothing worth timing.
        with Session(self.engine) as session:
            row = session.scalars(
                select(VisitorRow).where(VisitorRow.token_hash == _hash(token))
            ).first()
            return _visitor(row) if row is not None else None

    def claim(self, conversation_id: str, visitor: Visitor, user_id: str) -> None:
        """The visitor started this conversation; the helpdesk knows them as ``user_id``."""
        with self._lock, Session(self.engine) as session:
            conversation = self._conversation_row(session, conversation_id)
            conversation.visitor_id = visitor.id
            row = session.get(VisitorRow, visitor.id)
            if row is not None:
                row.user_id = user_id
            session.commit()
            self._bump(conversation_id)

    def conversations_of(self, visitor: Visitor) -> list[ConversationState]:
        with Session(self.engine) as session:
            ids = session.scalars(
                select(ConversationRow.id)
                .where(ConversationRow.visitor_id == visitor.id)
                .order_by(ConversationRow.updated_at.desc())
            ).all()
        return [self.state(conversation_id) for conversation_id in ids]

    def owns(self, visitor: Visitor, conversation_id: str) -> bool:
        with Session(self.engine) as session:
            row = session.get(ConversationRow, conversation_id)
            return row is not None and row.visitor_id == visitor.id

    def state(self, conversation_id: str) -> ConversationState:
        with Session(self.engine) as session:
            row = session.get(ConversationRow, conversation_id)
            payloads = session.scalars(
                select(MessageRow.payload)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.seq)
            ).all()
        return ConversationState(
            id=conversation_id,
            owner=row.owner if row is not None else None,
            version=self.version(conversation_id),
            messages=[json.loads(p) for p in payloads],
            status=row.status if row is not None else None,
        )

    def version(self, conversation_id: str) -> int:
        return self._versions.get(conversation_id, 0)

    # --- the sync engine's Memory ---

    def seen(self, conversation_id: str) -> Seen:
        with self._lock:
            if conversation_id not in self._seen:
                with Session(self.engine) as session:
                    row = session.get(ConversationRow, conversation_id)
                    ids = session.scalars(
                        select(MessageRow.id).where(MessageRow.conversation_id == conversation_id)
                    ).all()
                self._seen[conversation_id] = Seen(
                    last_id=row.last_id if row is not None else None,
                    ids=set(ids),
                    user_id=row.user_id if row is not None else None,
                )
            return self._seen[conversation_id]

    def remember(
        self,
        conversation_id: str,
        user_id: str,
        messages: list[dict[str, Any]],
        reply: dict[str, Any] | None,
        owner: Owner | None,
        status: str | None = None,
    ) -> None:
        stored: list[dict[str, Any]] = []
        with self._lock, Session(self.engine) as session:
            seen = self.seen(conversation_id)
            known = set(seen.ids)
            absorb(seen, user_id, messages, reply)
            conversation = self._conversation_row(session, conversation_id)
            conversation.user_id = user_id
            conversation.last_id = seen.last_id
            if owner is not None:
                conversation.owner = owner
            if status is not None:
                conversation.status = status
            conversation.updated_at = time.time()
            for message in [*messages, *([reply] if reply is not None else [])]:
                if str(message["id"]) in known or message.get("visibility") == "private":
                    continue
                known.add(str(message["id"]))
                stored.append(message)
                session.add(
                    MessageRow(
                        id=str(message["id"]),
                        conversation_id=conversation_id,
                        payload=json.dumps(message),
                    )
                )
            session.commit()
            self._bump(conversation_id)
        if stored:
            for listener in self._listeners:
                listener(conversation_id, stored)

    # --- plumbing ---

    def _conversation_row(self, session: Session, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None:
            now = time.time()
            row = ConversationRow(id=conversation_id, created_at=now, updated_at=now)
            session.add(row)
        return row

    def _bump(self, conversation_id: str) -> None:
        self._versions[conversation_id] = self._versions.get(conversation_id, 0) + 1


def _visitor(row: VisitorRow) -> Visitor:
    return Visitor(row.id, row.object_id, row.name, row.email, row.user_id)


def _add_missing_columns(engine: Any) -> None:
    """A store written by an older emulator lacks the columns added since (no migrations here:
    Intercom's side keeps a throwaway file)."""
    have = {column["name"] for column in inspect(engine).get_columns("conversations")}
    if "status" not in have:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE conversations ADD COLUMN status VARCHAR(16)"))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
