"""agent token ids, labels and last use; idempotency keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:32:16.271825
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # as findesk.kit.ids (migrations do not import it)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=2048), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column(
            "response_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_idempotency_keys_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)

    # Tokens issued before this version get a public id too, so that they can be listed and
    # revoked like new ones.
    with op.batch_alter_table("agent_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("label", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    _name_existing_tokens()
    with op.batch_alter_table("agent_tokens", schema=None) as batch_op:
        batch_op.alter_column("id", existing_type=sa.String(length=40), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_agent_tokens_id"), ["id"])


def _name_existing_tokens() -> None:
    tokens = sa.table("agent_tokens", sa.column("token_hash"), sa.column("id"))
    connection = op.get_bind()
    for (token_hash,) in connection.execute(sa.select(tokens.c.token_hash)).all():
        token_id = "tok_" + "".join(secrets.choice(_ALPHABET) for _ in range(20))
        connection.execute(
            tokens.update().where(tokens.c.token_hash == token_hash).values(id=token_id)
        )


def downgrade() -> None:
    with op.batch_alter_table("agent_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_agent_tokens_id"), type_="unique")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("label")
        batch_op.drop_column("id")

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_created_at")

    op.drop_table("idempotency_keys")
