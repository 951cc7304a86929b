"""article translations, collections, and articles' copies in Intercom's Articles API

New tables: ``article_translations`` (an article in another language), ``article_collections``
with their names per language and their members (an article in at most one). ``articles`` gains
the ``intercom_*`` columns of its copy in Intercom's help centre (plain ADD COLUMNs: no rebuild).

Existing articles in a language other than English keep their content where it is: it is the
article's own language. Their tag is rewritten as Intercom's code where it names one of
Intercom's languages (``de-DE`` → ``de``, ``pt-br`` → ``pt-BR``, ``fr-CA`` → ``fr``), and those
published are marked for the publisher's Articles API phase, which sends them to Intercom on its
first pass. An article whose tag names none of Intercom's languages is left as it was.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "articles",
        sa.Column("intercom_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("articles", sa.Column("intercom_article_id", sa.String(64), nullable=True))
    op.add_column("articles", sa.Column("intercom_hash", sa.String(64), nullable=True))
    op.add_column(
        "articles",
        sa.Column("intercom_published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("articles", sa.Column("intercom_error", sa.Text(), nullable=True))
    op.add_column(
        "articles", sa.Column("intercom_error_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "articles",
        sa.Column("intercom_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "articles",
        sa.Column("intercom_next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_articles_intercom_pending", "articles", ["intercom_pending"])

    op.create_table(
        "article_translations",
        sa.Column("article_id", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("body_format", sa.String(length=16), nullable=False),
        sa.Column("body_source", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("intercom_hash", sa.String(length=64), nullable=True),
        sa.Column("intercom_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "body_format IN ('markdown', 'html')", name=op.f("ck_article_translations_body_format")
        ),
        sa.CheckConstraint(
            "state IN ('draft', 'published', 'archived')",
            name=op.f("ck_article_translations_state"),
        ),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_translations_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", "locale", name=op.f("pk_article_translations")),
    )
    op.create_index(
        "ix_article_translations_locale_state", "article_translations", ["locale", "state"]
    )
    op.create_table(
        "article_collections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_collections")),
    )
    op.create_table(
        "article_collection_translations",
        sa.Column("collection_id", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["article_collections.id"],
            name=op.f("fk_article_collection_translations_collection_id_article_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "collection_id", "locale", name=op.f("pk_article_collection_translations")
        ),
    )
    op.create_table(
        "article_collection_members",
        sa.Column("article_id", sa.String(length=40), nullable=False),
        sa.Column("collection_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_collection_members_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["article_collections.id"],
            name=op.f("fk_article_collection_members_collection_id_article_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_article_collection_members")),
    )
    op.create_index(
        "ix_article_collection_members_collection",
        "article_collection_members",
        ["collection_id"],
    )
    _migrate_non_english_articles()


def _migrate_non_english_articles() -> None:
    # The list as it is today, frozen here: a migration must not change with the code.
    codes = (
        "ar bg bs ca cs da de el en es et fi fr he hr hu id it ja ko lt lv mn nb nl pl pt ro "
        "ru sl sr sv tr vi pt-BR zh-CN zh-TW"
    ).split()
    by_lower = {code.lower(): code for code in codes}
    aliases = {"no": "nb", "nn": "nb", "iw": "he", "in": "id", "zh": "zh-CN"}
    aliases |= {"zh-hans": "zh-CN", "zh-sg": "zh-CN", "zh-hant": "zh-TW", "zh-hk": "zh-TW"}
    articles = sa.table(
        "articles",
        sa.column("id", sa.String),
        sa.column("locale", sa.String),
        sa.column("state", sa.String),
        sa.column("intercom_pending", sa.Boolean),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(articles.c.id, articles.c.locale, articles.c.state)).all()
    for article_id, tag, state in rows:
        lowered = tag.strip().lower().replace("_", "-")
        if lowered.split("-")[0] == "en":
            continue
        parts = lowered.split("-")
        code = None
        for length in range(len(parts), 0, -1):
            prefix = "-".join(parts[:length])
            code = aliases.get(prefix) or by_lower.get(prefix)
            if code is not None:
                break
        if code is None:
            continue
        connection.execute(
            sa.update(articles)
            .where(articles.c.id == article_id)
            .values(locale=code, intercom_pending=state == "published")
        )


def downgrade() -> None:
    op.drop_index(
        "ix_article_collection_members_collection", table_name="article_collection_members"
    )
    op.drop_table("article_collection_members")
    op.drop_table("article_collection_translations")
    op.drop_table("article_collections")
    op.drop_index("ix_article_translations_locale_state", table_name="article_translations")
    op.drop_table("article_translations")
    op.drop_index("ix_articles_intercom_pending", table_name="articles")
    for column in (
        "intercom_next_attempt_at",
        "intercom_attempts",
        "intercom_error_at",
        "intercom_error",
        "intercom_published_at",
        "intercom_hash",
        "intercom_article_id",
        "intercom_pending",
    ):
        op.drop_column("articles", column)
