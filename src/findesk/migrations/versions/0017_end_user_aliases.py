"""end-user aliases: the ids of end users merged into another, and who answers to them now

A new table, and an index on end users' names (the inbox's merge suggestions), made with a
plain CREATE INDEX: ``end_users``, ``conversations`` and ``messages`` are not rebuilt (on
SQLite a batch rebuild would drop the full-text search triggers of 0014). Starts empty.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "end_user_aliases",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('id', 'object_id')", name=op.f("ck_end_user_aliases_kind")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["end_users.id"],
            name=op.f("fk_end_user_aliases_user_id_end_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "alias", name=op.f("pk_end_user_aliases")),
    )
    with op.batch_alter_table("end_user_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_end_user_aliases_user_id"), ["user_id"], unique=False)
    op.create_index(op.f("ix_end_users_name"), "end_users", ["name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_end_users_name"), table_name="end_users")
    with op.batch_alter_table("end_user_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_end_user_aliases_user_id"))
    op.drop_table("end_user_aliases")
