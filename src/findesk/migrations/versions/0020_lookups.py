"""lookups: admin-defined reads that Fin calls as Data Connectors, their tokens and their calls

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lookups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_type_id", sa.String(length=40), nullable=True),
        sa.Column("attribute", sa.String(length=64), nullable=True),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("summary_field", sa.String(length=64), nullable=True),
        sa.Column("user_scoped", sa.Boolean(), nullable=False),
        sa.Column("direct_fin_usage", sa.Boolean(), nullable=False),
        sa.Column("audiences", JSON, nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_type_id"],
            ["custom_object_types.id"],
            name=op.f("fk_lookups_object_type_id_custom_object_types"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookups")),
        sa.UniqueConstraint("name", name=op.f("uq_lookups_name")),
    )
    op.create_table(
        "lookup_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("lookup_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["lookup_id"],
            ["lookups.id"],
            name=op.f("fk_lookup_tokens_lookup_id_lookups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_lookup_tokens_token_hash")),
    )
    op.create_index(op.f("ix_lookup_tokens_lookup_id"), "lookup_tokens", ["lookup_id"])
    op.create_table(
        "lookup_calls",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("lookup_id", sa.String(length=40), nullable=False),
        sa.Column("token_id", sa.String(length=40), nullable=True),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("summary", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_calls")),
    )
    op.create_index("ix_lookup_calls_lookup_at", "lookup_calls", ["lookup_id", "at"])
    op.create_index("ix_lookup_calls_rate", "lookup_calls", ["lookup_id", "counted", "at"])


def downgrade() -> None:
    op.drop_index("ix_lookup_calls_rate", table_name="lookup_calls")
    op.drop_index("ix_lookup_calls_lookup_at", table_name="lookup_calls")
    op.drop_table("lookup_calls")
    op.drop_index(op.f("ix_lookup_tokens_lookup_id"), table_name="lookup_tokens")
    op.drop_table("lookup_tokens")
    op.drop_table("lookups")
