"""findesk's own chat: conversations' channel, visitors' sessions, Fin's state per chat

``conversations.channel`` (``messenger`` for every existing row; ``chat`` for the widget's).
New tables ``chat_sessions`` (visitors' tokens, hashed), ``chat_conversations`` (the Intercom
channel and Fin's state of each chat), ``chat_message_extras`` (quick replies),
``chat_uploads`` (files uploaded, not sent yet) and ``chat_inbound_events`` (Intercom's event
ids seen, to ignore repeats).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("channel", sa.String(length=16), nullable=False, server_default="messenger"),
    )
    op.create_table(
        "chat_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["end_users.id"],
            name=op.f("fk_chat_sessions_user_id_end_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_chat_sessions_token_hash")),
    )
    op.create_index(op.f("ix_chat_sessions_user_id"), "chat_sessions", ["user_id"])
    op.create_table(
        "chat_conversations",
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("fin_channel", sa.String(length=16), nullable=True),
        sa.Column("fin_state", sa.String(length=32), nullable=True),
        sa.Column("intercom_conversation_id", sa.String(length=255), nullable=True),
        sa.Column("csat_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("pending_attribute", JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_chat_conversations_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_chat_conversations")),
    )
    op.create_table(
        "chat_message_extras",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("quick_replies", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_chat_message_extras_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_chat_message_extras")),
    )
    op.create_table(
        "chat_uploads",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name=op.f("fk_chat_uploads_session_id_chat_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_chat_uploads")),
    )
    op.create_index(op.f("ix_chat_uploads_session_id"), "chat_uploads", ["session_id"])
    op.create_table(
        "chat_inbound_events",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_chat_inbound_events")),
    )
    op.create_index(
        op.f("ix_chat_inbound_events_received_at"), "chat_inbound_events", ["received_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_chat_inbound_events_received_at"), table_name="chat_inbound_events")
    op.drop_table("chat_inbound_events")
    op.drop_index(op.f("ix_chat_uploads_session_id"), table_name="chat_uploads")
    op.drop_table("chat_uploads")
    op.drop_table("chat_message_extras")
    op.drop_table("chat_conversations")
    op.drop_index(op.f("ix_chat_sessions_user_id"), table_name="chat_sessions")
    op.drop_table("chat_sessions")
    # (SQLite drops a column in place since 3.35: no table rebuild, the search triggers stay.)
    op.drop_column("conversations", "channel")
