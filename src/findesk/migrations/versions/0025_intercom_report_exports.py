"""intercom report exports: Reporting Data Export jobs (stored before and after they are
enqueued, so that an export resumes after a crash) and the rows downloaded from them

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "intercom_report_jobs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("dataset_id", sa.String(length=64), nullable=False),
        sa.Column("attribute_ids", JSON, nullable=False),
        sa.Column("range_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("range_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_identifier", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intercom_report_jobs")),
        sa.UniqueConstraint(
            "dataset_id",
            "range_start",
            "range_end",
            name=op.f("uq_intercom_report_jobs_dataset_id"),
        ),
    )
    op.create_index(
        "ix_intercom_report_jobs_status", "intercom_report_jobs", ["status"], unique=False
    )
    op.create_table(
        "intercom_report_rows",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("intercom_conversation_id", sa.String(length=64), nullable=True),
        sa.Column("external_reference", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fin_participated", sa.Boolean(), nullable=True),
        sa.Column("fin_resolution_state", sa.String(length=64), nullable=True),
        sa.Column("fin_resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["intercom_report_jobs.id"],
            name=op.f("fk_intercom_report_rows_job_id_intercom_report_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intercom_report_rows")),
    )
    op.create_index("ix_intercom_report_rows_job", "intercom_report_rows", ["job_id"])
    op.create_index("ix_intercom_report_rows_started", "intercom_report_rows", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_intercom_report_rows_started", table_name="intercom_report_rows")
    op.drop_index("ix_intercom_report_rows_job", table_name="intercom_report_rows")
    op.drop_table("intercom_report_rows")
    op.drop_index("ix_intercom_report_jobs_status", table_name="intercom_report_jobs")
    op.drop_table("intercom_report_jobs")
