"""CSAT ratings: a conversation's rating request (its link's token, hashed) and its rating

New table ``csat_ratings``: one row per conversation, written when findesk asks for a rating;
``score``, ``comment`` and ``rated_at`` are filled once, when the end user rates.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "csat_ratings",
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_csat_ratings_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_csat_ratings_agent_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_csat_ratings")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_csat_ratings_token_hash")),
        sa.CheckConstraint(
            "score IS NULL OR (score >= 1 AND score <= 5)", name=op.f("ck_csat_ratings_score")
        ),
    )
    op.create_index(op.f("ix_csat_ratings_rated_at"), "csat_ratings", ["rated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_csat_ratings_rated_at"), table_name="csat_ratings")
    op.drop_table("csat_ratings")
