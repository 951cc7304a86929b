"""SLA policies and their timers

New tables ``sla_policies`` (ordered, with their conditions, targets and escalation) and
``sla_timers`` (one row per conversation and target).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=True),
        sa.Column("priority", sa.String(length=64), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("next_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("escalation", sa.String(length=16), nullable=False),
        sa.Column("escalation_team_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "escalation IN ('notify', 'raise_priority', 'reassign')",
            name=op.f("ck_sla_policies_escalation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
    )
    op.create_index("ix_sla_policies_position", "sla_policies", ["position", "id"])
    op.create_table(
        "sla_timers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("policy_id", sa.String(length=40), nullable=True),
        sa.Column("policy_name", sa.String(length=255), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "target IN ('first_response', 'next_response', 'resolution')",
            name=op.f("ck_sla_timers_target"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_timers_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_timers")),
        sa.UniqueConstraint("conversation_id", "target", name="uq_sla_timers_conversation_target"),
    )
    op.create_index("ix_sla_timers_due", "sla_timers", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_sla_timers_due", table_name="sla_timers")
    op.drop_table("sla_timers")
    op.drop_index("ix_sla_policies_position", table_name="sla_policies")
    op.drop_table("sla_policies")
