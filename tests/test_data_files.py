"""findesk's data is its own: the data folder 0700, the SQLite database, its WAL and shared
memory files and every attachment 0600, also when an older findesk made them readable to all."""

from __future__ import annotations

import io
import stat
from pathlib import Path

from sqlalchemy import text

from findesk.attachments import service as attachments
from findesk.conversations.service import Author, NewMessage, open_conversation
from findesk.kit.actor import FIN
from findesk.kit.db import Database
from findesk.migrations import upgrade
from findesk.users.service import create_user


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_database_and_its_folder_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:  # WAL mode: a write leaves -wal and -shm beside it
            session.execute(text("CREATE TABLE probe (x INTEGER)"))
        assert mode(data) == 0o700
        for name in ("findesk.db", "findesk.db-wal", "findesk.db-shm"):
            assert (data / name).exists(), name
            assert mode(data / name) == 0o600, name
    finally:
        db.dispose()


def test_an_older_install_readable_to_all_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    database = data / "findesk.db"
    database.touch()
    database.chmod(0o644)
    upgrade(f"sqlite:///{database}")
    assert mode(data) == 0o700
    assert mode(database) == 0o600


def test_attachments_and_their_folder_are_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    files = tmp_path / "files"
    try:
        with db.transaction() as session:
            user, _ = create_user(session, object_id=None, name="Sam")
            conversation, _, _ = open_conversation(
                session,
                user_id=user.id,
                first=NewMessage(author=Author("end_user", user.id), body="<p>Hi</p>"),
                actor=FIN,
            )
            stored = attachments.store(
                session,
                attachments.Upload("invoice.pdf", "application/pdf", io.BytesIO(b"%PDF-1.4 x")),
                directory=files,
                conversation_id=conversation.id,
                agent_id=None,
                max_bytes=1024,
            )
        assert mode(files) == 0o700
        written = [p for p in files.iterdir()]
        assert written and all(mode(p) == 0o600 for p in written)
        assert stored.size == 10
    finally:
        db.dispose()


def test_a_database_in_a_shared_sticky_folder_leaves_the_folder_to_everyone(tmp_path: Path) -> None:
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp is: a database put there must not take /tmp from the machine
    url = f"sqlite:///{shared / 'findesk.db'}"
    upgrade(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            session.execute(text("CREATE TABLE probe (x INTEGER)"))
        assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
        assert mode(shared / "findesk.db") == 0o600
    finally:
        db.dispose()
