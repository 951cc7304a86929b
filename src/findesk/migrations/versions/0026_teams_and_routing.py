"""teams, agents' presence and capacity, and routing rules

New tables ``teams``, ``team_members`` and ``routing_rules``. ``agents`` gains ``presence``
(offline for everyone until they say otherwise), ``last_seen_at`` and ``capacity``;
``conversations`` gains ``team_id`` (plain ADD COLUMNs: no table rebuild).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column(
        "agents",
        sa.Column(
            "presence", sa.String(length=16), nullable=False, server_default=sa.text("'offline'")
        ),
    )
    op.add_column("agents", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("agents", sa.Column("capacity", sa.Integer(), nullable=True))
    op.add_column("conversations", sa.Column("team_id", sa.String(length=40), nullable=True))
    op.create_index("ix_conversations_team_status", "conversations", ["team_id", "status"])

    op.create_table(
        "teams",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("assignment_method", sa.String(length=16), nullable=False),
        sa.Column("capacity_default", sa.Integer(), nullable=False),
        sa.Column("last_assigned_agent_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "assignment_method IN ('round_robin', 'least_busy')",
            name=op.f("ck_teams_assignment_method"),
        ),
        sa.CheckConstraint("capacity_default >= 0", name=op.f("ck_teams_capacity_default")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_team_members_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "agent_id", name=op.f("pk_team_members")),
    )
    op.create_index("ix_team_members_agent", "team_members", ["agent_id"])
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("actions", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index("ix_routing_rules_position", "routing_rules", ["position", "id"])


def downgrade() -> None:
    op.drop_index("ix_routing_rules_position", table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_index("ix_team_members_agent", table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
    op.drop_index("ix_conversations_team_status", table_name="conversations")
    # Plain DROP COLUMNs (SQLite 3.35+): a rebuild of either table would trip the triggers
    # that name them.
    op.drop_column("conversations", "team_id")
    op.drop_column("agents", "capacity")
    op.drop_column("agents", "last_seen_at")
    op.drop_column("agents", "presence")
