"""tickets: ticket types with typed attributes, ticket states (seeded), tickets

New tables only: conversations, messages and end_users are not rebuilt (their full-text search
triggers, from 0014, stay). A conversation's ticket is found through ``tickets.conversation_id``.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# Intercom's default states, one per category: (id, category, internal, external label).
STATES = (
    ("submitted", "submitted", "Submitted", "Submitted"),
    ("in_progress", "in_progress", "In progress", "In progress"),
    ("waiting_on_customer", "waiting_on_customer", "Waiting on customer", "Awaiting your reply"),
    ("resolved", "resolved", "Resolved", "Resolved"),
)


def upgrade() -> None:
    op.create_table(
        "ticket_types",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("icon", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("archived", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('Customer', 'Back-office', 'Tracker')",
            name=op.f("ck_ticket_types_category"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_types")),
        sa.UniqueConstraint("name", name=op.f("uq_ticket_types_name")),
    )
    states = op.create_table(
        "ticket_states",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("internal_label", sa.String(length=255), nullable=False),
        sa.Column("external_label", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_states")),
    )
    op.bulk_insert(
        states,
        [
            {
                "id": state_id,
                "category": category,
                "internal_label": internal,
                "external_label": external,
                "position": position,
            }
            for position, (state_id, category, internal, external) in enumerate(STATES)
        ],
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ticket_type_id", sa.String(length=40), nullable=False),
        sa.Column("state_id", sa.String(length=40), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=True),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("tracker_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_tickets_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["agents.id"],
            name=op.f("fk_tickets_created_by_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["state_id"], ["ticket_states.id"], name=op.f("fk_tickets_state_id_ticket_states")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_type_id"],
            ["ticket_types.id"],
            name=op.f("fk_tickets_ticket_type_id_ticket_types"),
        ),
        sa.ForeignKeyConstraint(
            ["tracker_id"],
            ["tickets.id"],
            name=op.f("fk_tickets_tracker_id_tickets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["end_users.id"],
            name=op.f("fk_tickets_user_id_end_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_tickets_conversation_id")),
        sa.UniqueConstraint("number", name=op.f("uq_tickets_number")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_state_updated", ["state_id", "updated_at"], unique=False)
        batch_op.create_index(
            "ix_tickets_type_updated", ["ticket_type_id", "updated_at"], unique=False
        )
        batch_op.create_index("ix_tickets_updated", ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tickets_tracker_id"), ["tracker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_tracker_id"))
        batch_op.drop_index("ix_tickets_updated")
        batch_op.drop_index("ix_tickets_type_updated")
        batch_op.drop_index("ix_tickets_state_updated")
    op.drop_table("tickets")
    op.drop_table("ticket_states")
    op.drop_table("ticket_types")
