"""snooze: a conversation may be set aside until a time, out of its queue until then

``conversations.snoozed_until`` is null unless an agent snoozed the conversation; the waker
(``findesk.conversations.snooze``) clears it when the time comes. The partial index holds the
snoozed ones only: the waker's "which are due" and the queues' "how many are snoozed" read a
few rows, whatever the number of conversations. It leads with the status so that SQLite's
planner, with no statistics, prefers it to the status indexes for "open and snoozed".

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SNOOZED = sa.text("snoozed_until IS NOT NULL")


def upgrade() -> None:
    # A plain ADD COLUMN on SQLite too: no table rebuild, so search's triggers stay in place.
    op.add_column(
        "conversations", sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_conversations_snoozed_until",
        "conversations",
        ["status", "snoozed_until"],
        sqlite_where=SNOOZED,
        postgresql_where=SNOOZED,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_snoozed_until", table_name="conversations")
    op.drop_column("conversations", "snoozed_until")
