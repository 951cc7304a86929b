"""typing signals shared by every process; PostgreSQL: NOTIFY findesk_activity on new activity

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "typing_signals",
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "agent_id", name=op.f("pk_typing_signals")),
    )
    with op.batch_alter_table("typing_signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_typing_signals_sent_at"), ["sent_at"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # Every process's live feed LISTENs on this channel. One notification per statement,
        # delivered at commit (and PostgreSQL folds a transaction's identical ones into one):
        # it only wakes the feeds, which read the table.
        op.execute(
            """
            CREATE FUNCTION findesk_activity_notify() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('findesk_activity', '');
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER activity_notify AFTER INSERT ON activity "
            "FOR EACH STATEMENT EXECUTE FUNCTION findesk_activity_notify()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS activity_notify ON activity")
        op.execute("DROP FUNCTION IF EXISTS findesk_activity_notify()")
    with op.batch_alter_table("typing_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_typing_signals_sent_at"))
    op.drop_table("typing_signals")
