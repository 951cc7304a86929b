"""alerts: outbound webhook endpoints, agents' email preferences, and the outbox's delivery
kind and payload (webhooks and emails go through the outbox)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column(
        "outbox_events",
        sa.Column("kind", sa.String(length=16), server_default="fin", nullable=False),
    )
    op.add_column("outbox_events", sa.Column("payload", sa.Text(), nullable=True))
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("secret_nonce", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "alert_preferences",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("email_handover", sa.Boolean(), nullable=False),
        sa.Column("email_assigned", sa.Boolean(), nullable=False),
        sa.Column("digest_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_alert_preferences_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_alert_preferences")),
    )


def downgrade() -> None:
    op.drop_table("alert_preferences")
    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("payload")
        batch.drop_column("kind")
