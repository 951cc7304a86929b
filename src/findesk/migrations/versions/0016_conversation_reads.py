"""conversation reads: how far each agent has read each conversation (the queues' unread marker)

Starts empty: every conversation an agent has not opened since counts as unread for them while
it has a message by someone else.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_reads",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("read_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_conversation_reads_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_reads_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "conversation_id", name=op.f("pk_conversation_reads")),
    )
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_reads_conversation", ["conversation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_reads", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_reads_conversation")
    op.drop_table("conversation_reads")
