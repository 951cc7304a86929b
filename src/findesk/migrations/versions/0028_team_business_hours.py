"""teams' business hours: a time zone, weekly hours and holidays per team

``teams`` gains ``timezone`` (null: UTC), ``business_hours`` (JSON ``{"mon": [["09:00",
"17:00"]], ...}``; null: always open) and ``holidays`` (JSON list of ISO dates). Plain ADD
COLUMNs: no table rebuild.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("teams", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column("teams", sa.Column("business_hours", JSON, nullable=True))
    op.add_column(
        "teams", sa.Column("holidays", JSON, nullable=False, server_default=sa.text("'[]'"))
    )


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("holidays")
        batch.drop_column("business_hours")
        batch.drop_column("timezone")
