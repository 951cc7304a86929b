"""full-text search: messages' plain text, conversations' search heads, FTS5 or GIN indexes

Each message keeps the visible text of its body (``plain_text``, filled here for the existing
ones); each conversation has a search head, the title and its end user's name and email in one
text, kept by triggers. SQLite indexes both with FTS5 tables (external content, kept by
triggers); PostgreSQL with GIN indexes over ``to_tsvector('simple', …)``, which keep
themselves. Either way the index changes in the transaction that changes the text.

The expressions here are those ``findesk.search.repository`` queries: change them together.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 13:00:00.000000
"""

import html
from collections.abc import Sequence

import nh3
import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Punctuation becomes space, so that an email or a URL is indexed as its words, as FTS5 cuts them.
PG_MESSAGE_VECTOR = (
    "to_tsvector('simple'::regconfig,"
    " regexp_replace(COALESCE(plain_text, ''), '[[:punct:]]+', ' ', 'g'))"
)
PG_HEAD_VECTOR = (
    "to_tsvector('simple'::regconfig, regexp_replace(plain_text, '[[:punct:]]+', ' ', 'g'))"
)
FTS5_OPTIONS = "tokenize='unicode61 remove_diacritics 2', prefix='2 3'"
_BATCH = 5000


def _to_text(body: str) -> str:
    """``findesk.kit.html.to_text`` as of this revision (a migration does not import the app)."""
    text = nh3.clean(body.replace("<br>", "\n").replace("</p>", "</p>\n"), tags=set())
    return html.unescape(text).strip()


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plain_text", sa.Text(), nullable=True))
    _fill_plain_text(bind)
    op.create_table(
        "search_heads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("plain_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_search_heads_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_heads")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_search_heads_conversation_id")),
    )
    if postgres:
        _upgrade_postgres()
    else:
        _upgrade_sqlite()


def _fill_plain_text(bind: sa.Connection) -> None:
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT seq, body FROM messages WHERE seq > :last AND body IS NOT NULL"
                " ORDER BY seq LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE messages SET plain_text = :t WHERE seq = :s"),
            [{"s": seq, "t": _to_text(body)} for seq, body in rows],
        )
        last = rows[-1][0]


_SQLITE_HEAD = (
    "trim(coalesce({title} || ' · ', '') || coalesce({name} || ' · ', '')"
    " || coalesce({email}, ''), ' ·')"
)


def _sqlite_head(title: str, name: str, email: str) -> str:
    return _SQLITE_HEAD.format(title=title, name=name, email=email)


def _upgrade_sqlite() -> None:
    # Messages: an external-content FTS5 table over messages.plain_text, keyed by seq.
    op.execute(
        "CREATE VIRTUAL TABLE message_search USING fts5(plain_text, content='messages',"
        f" content_rowid='seq', {FTS5_OPTIONS})"
    )
    op.execute(
        "INSERT INTO message_search (rowid, plain_text)"
        " SELECT seq, plain_text FROM messages WHERE plain_text IS NOT NULL"
    )
    # A row without text is never in the index: deleting it from there would corrupt it.
    op.execute(
        "CREATE TRIGGER message_search_insert AFTER INSERT ON messages"
        " WHEN new.plain_text IS NOT NULL BEGIN"
        " INSERT INTO message_search (rowid, plain_text) VALUES (new.seq, new.plain_text); END"
    )
    op.execute(
        "CREATE TRIGGER message_search_delete AFTER DELETE ON messages"
        " WHEN old.plain_text IS NOT NULL BEGIN"
        " INSERT INTO message_search (message_search, rowid, plain_text)"
        " VALUES ('delete', old.seq, old.plain_text); END"
    )
    op.execute(
        "CREATE TRIGGER message_search_update AFTER UPDATE OF plain_text ON messages"
        " WHEN old.plain_text IS NOT new.plain_text BEGIN"
        " INSERT INTO message_search (message_search, rowid, plain_text)"
        " SELECT 'delete', old.seq, old.plain_text WHERE old.plain_text IS NOT NULL;"
        " INSERT INTO message_search (rowid, plain_text)"
        " SELECT new.seq, new.plain_text WHERE new.plain_text IS NOT NULL; END"
    )
    # Heads: an external-content FTS5 table over search_heads, which triggers keep.
    op.execute(
        "CREATE VIRTUAL TABLE head_search USING fts5(plain_text, content='search_heads',"
        f" content_rowid='id', {FTS5_OPTIONS})"
    )
    op.execute(
        "CREATE TRIGGER head_search_insert AFTER INSERT ON search_heads BEGIN"
        " INSERT INTO head_search (rowid, plain_text) VALUES (new.id, new.plain_text); END"
    )
    op.execute(
        "CREATE TRIGGER head_search_delete AFTER DELETE ON search_heads BEGIN"
        " INSERT INTO head_search (head_search, rowid, plain_text)"
        " VALUES ('delete', old.id, old.plain_text); END"
    )
    op.execute(
        "CREATE TRIGGER head_search_update AFTER UPDATE OF plain_text ON search_heads BEGIN"
        " INSERT INTO head_search (head_search, rowid, plain_text)"
        " VALUES ('delete', old.id, old.plain_text);"
        " INSERT INTO head_search (rowid, plain_text) VALUES (new.id, new.plain_text); END"
    )
    op.execute(
        (
            "CREATE TRIGGER search_heads_new_conversation AFTER INSERT ON conversations BEGIN"
            " INSERT INTO search_heads (conversation_id, plain_text)"
            " SELECT new.id, @HEAD"
            " FROM end_users u WHERE u.id = new.user_id; END"
        ).replace("@HEAD", _sqlite_head("new.title", "u.name", "u.email"))
    )
    op.execute(
        (
            "CREATE TRIGGER search_heads_conversation_change"
            " AFTER UPDATE OF title, user_id ON conversations"
            " WHEN old.title IS NOT new.title OR old.user_id IS NOT new.user_id BEGIN"
            " UPDATE search_heads SET plain_text ="
            " (SELECT @HEAD"
            " FROM end_users u WHERE u.id = new.user_id) WHERE conversation_id = new.id; END"
        ).replace("@HEAD", _sqlite_head("new.title", "u.name", "u.email"))
    )
    op.execute(
        (
            "CREATE TRIGGER search_heads_user_change AFTER UPDATE OF name, email ON end_users"
            " WHEN old.name IS NOT new.name OR old.email IS NOT new.email BEGIN"
            " UPDATE search_heads SET plain_text ="
            " (SELECT @HEAD"
            " FROM conversations c WHERE c.id = search_heads.conversation_id)"
            " WHERE conversation_id IN (SELECT id FROM conversations WHERE user_id = new.id); END"
        ).replace("@HEAD", _sqlite_head("c.title", "new.name", "new.email"))
    )
    op.execute(
        (
            "INSERT INTO search_heads (conversation_id, plain_text)"
            " SELECT c.id, @HEAD"
            " FROM conversations c JOIN end_users u ON u.id = c.user_id"
        ).replace("@HEAD", _sqlite_head("c.title", "u.name", "u.email"))
    )


def _upgrade_postgres() -> None:
    op.execute(
        """
        CREATE FUNCTION findesk_search_head(title text, name text, email text) RETURNS text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT btrim(coalesce(title || ' · ', '') || coalesce(name || ' · ', '')
                         || coalesce(email, ''), ' ·')
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION findesk_search_heads_of_conversation() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO search_heads (conversation_id, plain_text)
                SELECT NEW.id, findesk_search_head(NEW.title, u.name, u.email)
                FROM end_users u WHERE u.id = NEW.user_id;
            ELSIF NEW.title IS DISTINCT FROM OLD.title
                  OR NEW.user_id IS DISTINCT FROM OLD.user_id THEN
                UPDATE search_heads
                SET plain_text = findesk_search_head(NEW.title, u.name, u.email)
                FROM end_users u
                WHERE u.id = NEW.user_id AND search_heads.conversation_id = NEW.id;
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER search_heads_of_conversation AFTER INSERT OR UPDATE OF title, user_id"
        " ON conversations FOR EACH ROW EXECUTE FUNCTION findesk_search_heads_of_conversation()"
    )
    op.execute(
        """
        CREATE FUNCTION findesk_search_heads_of_user() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE search_heads
            SET plain_text = findesk_search_head(c.title, NEW.name, NEW.email)
            FROM conversations c
            WHERE c.id = search_heads.conversation_id AND c.user_id = NEW.id;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER search_heads_of_user AFTER UPDATE OF name, email ON end_users"
        " FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name"
        " OR OLD.email IS DISTINCT FROM NEW.email)"
        " EXECUTE FUNCTION findesk_search_heads_of_user()"
    )
    op.execute(
        "INSERT INTO search_heads (conversation_id, plain_text)"
        " SELECT c.id, findesk_search_head(c.title, u.name, u.email)"
        " FROM conversations c JOIN end_users u ON u.id = c.user_id"
    )
    op.execute(f"CREATE INDEX ix_messages_search ON messages USING gin ({PG_MESSAGE_VECTOR})")
    op.execute(f"CREATE INDEX ix_search_heads_search ON search_heads USING gin ({PG_HEAD_VECTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
        op.execute("DROP TRIGGER IF EXISTS search_heads_of_user ON end_users")
        op.execute("DROP TRIGGER IF EXISTS search_heads_of_conversation ON conversations")
        op.execute("DROP FUNCTION IF EXISTS findesk_search_heads_of_user()")
        op.execute("DROP FUNCTION IF EXISTS findesk_search_heads_of_conversation()")
        op.drop_table("search_heads")
        op.execute("DROP FUNCTION IF EXISTS findesk_search_head(text, text, text)")
    else:
        for trigger in (
            "message_search_insert",
            "message_search_delete",
            "message_search_update",
            "head_search_insert",
            "head_search_delete",
            "head_search_update",
            "search_heads_new_conversation",
            "search_heads_conversation_change",
            "search_heads_user_change",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS message_search")
        op.execute("DROP TABLE IF EXISTS head_search")
        op.drop_table("search_heads")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("plain_text")
