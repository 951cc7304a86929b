"""intercom connectors: Data Connectors kept in step with findesk's lookups, their execution
results read back; custom object types mirrored to Intercom (flag, per-instance sync state,
tombstones of deleted instances)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "intercom_connectors",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("intercom_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=True),
        sa.Column("sent", JSON, nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delete_refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_read_until", sa.BigInteger(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error_type", sa.String(length=64), nullable=True),
        sa.Column("last_execution_ms", sa.Integer(), nullable=True),
        sa.Column("executions_succeeded", sa.Integer(), nullable=False),
        sa.Column("executions_failed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_intercom_connectors")),
    )
    op.create_table(
        "intercom_connector_executions",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("result_id", sa.String(length=64), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("execution_time_ms", sa.Integer(), nullable=True),
        sa.Column("source_type", sa.String(length=32), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key"],
            ["intercom_connectors.key"],
            name=op.f("fk_intercom_connector_executions_key_intercom_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "result_id", name=op.f("pk_intercom_connector_executions")),
    )
    op.create_index(
        "ix_intercom_connector_executions_key_executed",
        "intercom_connector_executions",
        ["key", "executed_at"],
        unique=False,
    )
    op.create_table(
        "intercom_object_deletes",
        sa.Column("type_identifier", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "type_identifier", "external_id", name=op.f("pk_intercom_object_deletes")
        ),
    )
    with op.batch_alter_table("custom_object_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mirror_to_intercom", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("custom_object_instances", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("intercom_pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("intercom_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("intercom_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("intercom_error", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("intercom_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("intercom_next_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_custom_object_instances_intercom_pending", ["intercom_pending"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("custom_object_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_custom_object_instances_intercom_pending")
        for column in (
            "intercom_next_attempt_at",
            "intercom_attempts",
            "intercom_error",
            "intercom_hash",
            "intercom_id",
            "intercom_pending",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("custom_object_types", schema=None) as batch_op:
        batch_op.drop_column("mirror_to_intercom")
    op.drop_table("intercom_object_deletes")
    op.drop_index(
        "ix_intercom_connector_executions_key_executed", table_name="intercom_connector_executions"
    )
    op.drop_table("intercom_connector_executions")
    op.drop_table("intercom_connectors")
