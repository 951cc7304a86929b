"""conversation counts by status and assignee, kept by every change: the inbox's queue counts

The hot queries at size need no index beyond those of 0001 and 0005: their plans are checked by
tests/conversations/test_query_plans.py, and measured at 10,000,000 messages by
bench/pg_size.py.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversation_counts",
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.String(length=40), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint(
            "status", "assignee_id", "shard", name=op.f("pk_conversation_counts")
        ),
    )
    # The counts as the table has them now; from here on every change keeps them.
    op.execute(
        "INSERT INTO conversation_counts (status, assignee_id, shard, total)"
        " SELECT status, COALESCE(assignee_id, ''), 0, COUNT(*) FROM conversations"
        " GROUP BY status, COALESCE(assignee_id, '')"
    )


def downgrade() -> None:
    op.drop_table("conversation_counts")
