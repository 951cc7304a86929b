"""conversations.sla_timed: whether the conversation ever had SLA timers

True from the first timer an SLA policy starts on it (``findesk.sla``), never false again. Most
conversations are Fin's alone and never wait for a person: every message of theirs used to
look for timers it could not have. Filled here from the existing timers.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on SQLite too: no table rebuild, so search's triggers stay in place.
    op.add_column(
        "conversations",
        sa.Column("sla_timed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE conversations SET sla_timed = true"
        " WHERE id IN (SELECT conversation_id FROM sla_timers)"
    )


def downgrade() -> None:
    op.drop_column("conversations", "sla_timed")
