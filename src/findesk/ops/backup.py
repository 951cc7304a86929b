"""Backing up a SQLite findesk while it serves, and restoring the copy.

A backup is a folder: ``findesk.db``, a consistent copy of the database made by SQLite's
``VACUUM INTO`` in one read transaction (in WAL mode writers go on meanwhile, and the copy holds
exactly what was committed when it began), the attachments that copy refers to under ``files/``,
and ``manifest.json`` (when, which schema revision, how many rows). Attachments are written before
the row that names them commits and never change after, so copying them after the database
leaves none missing.

PostgreSQL has its own tools for this (``pg_dump``); the README says how.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from findesk import __version__
from findesk.kit.errors import Problem
from findesk.kit.files import private_file, private_folder, sqlite_path
from findesk.kit.settings import Settings
from findesk.kit.timeutil import isoformat, utcnow

DATABASE = "findesk.db"
FILES = "files"
MANIFEST = "manifest.json"
COUNTED = ("conversations", "messages", "end_users", "agents", "articles", "stored_files")


class BackupError(Problem):
    code = "backup_failed"


@dataclass
class Manifest:
    created_at: str
    findesk_version: str
    schema_revision: str | None
    rows: dict[str, int]
    files: int
    missing_files: list[str] = field(default_factory=list)


def _database_file(settings: Settings) -> Path:
    path = sqlite_path(settings.effective_database_url)
    if path is None:
        raise BackupError(
            "findesk backup copies a SQLite database; for PostgreSQL use pg_dump "
            "(`pg_dump --format=custom --file=findesk.dump <database>`, see the README)."
        )
    return path


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def backup(settings: Settings, destination: Path, *, now: datetime | None = None) -> Manifest:
    """Write a backup of the live database (and its attachments) into ``destination``, a folder
    that must not exist yet or be empty."""
    source = _database_file(settings)
    if not source.exists():
        raise BackupError(f"There is no database at {source}.")
    if destination.exists() and any(destination.iterdir()):
        raise BackupError(f"{destination} is not empty: back up into a new folder.")
    private_folder(destination)
    copy = destination / DATABASE
    connection = _connect(source)
    try:
        connection.execute("VACUUM INTO ?", (str(copy),))
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite could not copy the database: {exc}.") from None
    finally:
        connection.close()
    private_file(copy)
    manifest = _describe(copy, now or utcnow())
    manifest.files, manifest.missing_files = _copy_files(
        _stored_keys(copy), settings.attachments_dir, destination / FILES
    )
    manifest_path = private_file(destination / MANIFEST)
    manifest_path.write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def _describe(copy: Path, now: datetime) -> Manifest:
    connection = _connect(copy)
    try:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"The copy failed SQLite's integrity check: {check}.")
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        rows = {
            table: int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608 (names from COUNTED)
            for table in COUNTED
            if table in tables
        }
        revision = None
        if "alembic_version" in tables:
            found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = found[0] if found else None
    finally:
        connection.close()
    return Manifest(isoformat(now), __version__, revision, rows, files=0)


def _stored_keys(database: Path) -> list[str]:
    connection = _connect(database)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        if "stored_files" not in tables:
            return []
        return [row[0] for row in connection.execute("SELECT key FROM stored_files")]
    finally:
        connection.close()


def _copy_files(keys: list[str], source: Path, destination: Path) -> tuple[int, list[str]]:
    """Copy the files named by ``keys``; returns how many, and the keys with no file."""
    copied, missing = 0, []
    if keys:
        private_folder(destination)
    for key in keys:
        if not (source / key).is_file():
            missing.append(key)
            continue
        shutil.copyfile(source / key, private_file(destination / key))
        copied += 1
    return copied, missing


def restore(settings: Settings, backup_folder: Path, *, force: bool = False) -> Path | None:
    """Put a backup in place of the configured database and attachments. findesk must be
    stopped first (a running one would go on writing to the file set aside). An existing
    database is refused unless ``force``, and then kept beside, renamed: returns where (or None).
    ``findesk migrate`` (or the next start) upgrades an older backup's schema."""
    target = _database_file(settings)
    copy = backup_folder / DATABASE
    if not copy.is_file() or not (backup_folder / MANIFEST).is_file():
        raise BackupError(f"{backup_folder} is not a findesk backup (no {DATABASE} or manifest).")
    kept: Path | None = None
    if target.exists():
        if not force:
            raise BackupError(
                f"{target} exists. Stop findesk, then restore with --force (the current "
                "database is kept beside it, renamed)."
            )
        kept = target.with_name(f"{target.name}.before-restore-{utcnow():%Y%m%dT%H%M%SZ}")
        target.rename(kept)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    private_folder(target.parent)
    source, into = _connect(copy), _connect(private_file(target))
    try:
        source.backup(into)
    finally:
        source.close()
        into.close()
    files = backup_folder / FILES
    if files.is_dir():
        destination = private_folder(settings.attachments_dir)
        for item in files.iterdir():
            shutil.copyfile(item, private_file(destination / item.name))
    return kept
