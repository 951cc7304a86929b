from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from findesk.kit.db import Base


class SearchHead(Base):
    """A conversation's searchable head: its title and its end user's name and email, in one
    text. Written only by the database's triggers (migration 0013), in the transaction that
    changes a title or a user; its integer id is what SQLite's FTS5 index keys it by."""

    __tablename__ = "search_heads"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    conversation_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    plain_text: Mapped[str] = mapped_column(Text)


# The search indexes of migration 0013, which the models do not describe: SQLite's FTS5 tables
# (and their shadow tables), PostgreSQL's GIN indexes over expressions.
FTS5_TABLES = ("message_search", "head_search")
GIN_INDEXES = ("ix_messages_search", "ix_search_heads_search")


def is_index_table(name: str | None) -> bool:
    return name is not None and name.split("_search")[0] + "_search" in FTS5_TABLES


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """For Alembic's comparisons: leave the search indexes out."""
    if type_ == "index":
        return name not in GIN_INDEXES
    return not (type_ == "table" and is_index_table(name))
