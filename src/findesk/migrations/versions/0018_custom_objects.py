"""custom objects: admin-defined types, their instances (unique per type by external id) and
their links to end users and conversations

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custom_object_types",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("title_attribute", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_object_types")),
        sa.UniqueConstraint("identifier", name=op.f("uq_custom_object_types_identifier")),
    )
    op.create_table(
        "custom_object_instances",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column(
            "custom_attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("external_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["type_id"],
            ["custom_object_types.id"],
            name=op.f("fk_custom_object_instances_type_id_custom_object_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_object_instances")),
        sa.UniqueConstraint("type_id", "external_id", name="uq_custom_object_instances_external"),
    )
    with op.batch_alter_table("custom_object_instances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_custom_object_instances_type_created", ["type_id", "created_at"], unique=False
        )

    op.create_table(
        "custom_object_conversation_links",
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_custom_object_conversation_links_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["custom_object_instances.id"],
            name=op.f("fk_custom_object_conversation_links_instance_id_custom_object_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "conversation_id", "instance_id", name=op.f("pk_custom_object_conversation_links")
        ),
    )
    with op.batch_alter_table("custom_object_conversation_links", schema=None) as batch_op:
        batch_op.create_index(
            "ix_custom_object_conversation_links_instance", ["instance_id"], unique=False
        )

    op.create_table(
        "custom_object_user_links",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["custom_object_instances.id"],
            name=op.f("fk_custom_object_user_links_instance_id_custom_object_instances"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["end_users.id"],
            name=op.f("fk_custom_object_user_links_user_id_end_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "instance_id", name=op.f("pk_custom_object_user_links")),
    )
    with op.batch_alter_table("custom_object_user_links", schema=None) as batch_op:
        batch_op.create_index("ix_custom_object_user_links_instance", ["instance_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("custom_object_user_links", schema=None) as batch_op:
        batch_op.drop_index("ix_custom_object_user_links_instance")

    op.drop_table("custom_object_user_links")
    with op.batch_alter_table("custom_object_conversation_links", schema=None) as batch_op:
        batch_op.drop_index("ix_custom_object_conversation_links_instance")

    op.drop_table("custom_object_conversation_links")
    with op.batch_alter_table("custom_object_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_custom_object_instances_type_created")

    op.drop_table("custom_object_instances")
    op.drop_table("custom_object_types")
