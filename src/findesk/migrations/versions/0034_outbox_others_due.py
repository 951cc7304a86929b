"""ix_outbox_events_others_due: the due events of every kind but Fin's

While Fin is not configured its events wait, recorded, and a worker claims only the others
(alerts, the chat's calls to Intercom): it read them off ix_outbox_events_state_due, walking
every one of Fin's waiting events on each claim (a claim each commit). This partial index holds
the others alone.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-05 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_FIN = sa.text("kind <> 'fin'")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_events_others_due",
        "outbox_events",
        ["state", "next_attempt_at"],
        sqlite_where=NOT_FIN,
        postgresql_where=NOT_FIN,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_events_others_due", table_name="outbox_events")
