"""ix_tickets_user: an end user's tickets

A visitor merged into a user hands its tickets over (``users.service.merge_into``), and deleting
the visitor then checks ``tickets.user_id`` for the foreign key's SET NULL: without an index,
both read every ticket.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05 14:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tickets_user", "tickets", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_user", table_name="tickets")
