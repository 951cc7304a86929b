"""seen request signatures: a signed Fin API call is accepted once

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 20:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_request_signatures",
        sa.Column("digest_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest_hash", name=op.f("pk_seen_request_signatures")),
    )
    with op.batch_alter_table("seen_request_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_seen_request_signatures_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("seen_request_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_request_signatures_expires_at"))

    op.drop_table("seen_request_signatures")
