"""reports: per-conversation facts, their daily sums, and how far they are current

New tables ``report_facts``, ``report_days`` and ``report_state`` (see ``findesk.reports.models``).
They start empty: the first refresh (within a minute of ``findesk serve`` starting, or
``findesk report --refresh``) computes them from the conversations' history.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_DAY_COUNTS = (
    "conversations fin_resolved fin_reopened handed_over taken_over first_human_replies "
    "resolved replies human_replies csat_f1 csat_f2 csat_f3 csat_f4 csat_f5 csat_h1 csat_h2 "
    "csat_h3 csat_h4 csat_h5 rt0 rt1 rt2 rt3 rt4 rt5 rt6"
).split()
_DAY_SECONDS = ("take_over_seconds", "first_human_reply_seconds", "resolve_seconds")


def upgrade() -> None:
    op.create_table(
        "report_facts",
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds_to_take_over", sa.Float(), nullable=True),
        sa.Column("seconds_to_first_human_reply", sa.Float(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds_to_resolve", sa.Float(), nullable=True),
        sa.Column("fin_resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("came_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("human_handled", sa.Boolean(), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("human_replies", sa.Integer(), nullable=False),
        sa.Column("csat_score", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_index("ix_report_facts_day", "report_facts", ["day"])
    op.create_index("ix_report_facts_user", "report_facts", ["user_id", "fin_resolved_at"])
    op.create_index("ix_report_facts_fin_resolved", "report_facts", ["fin_resolved_at"])
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=40), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        *[sa.Column(name, _COUNT, nullable=False) for name in _DAY_COUNTS],
        *[sa.Column(name, sa.Float(), nullable=False) for name in _DAY_SECONDS],
        sa.PrimaryKeyConstraint("day", "channel", "team_id", "agent_id", "reason"),
    )
    op.create_table(
        "report_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("reopen_window_days", sa.Integer(), nullable=False),
        sa.Column("current_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("report_state")
    op.drop_table("report_days")
    op.drop_index("ix_report_facts_fin_resolved", table_name="report_facts")
    op.drop_index("ix_report_facts_user", table_name="report_facts")
    op.drop_index("ix_report_facts_day", table_name="report_facts")
    op.drop_table("report_facts")
