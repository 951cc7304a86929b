"""findesk's files are its own: folders 0700, files 0600 (the database, its WAL, attachments).

A folder or file made before (by an older findesk, or by hand) is tightened too: the database
holds end users' messages and the hashes of every credential.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """Make ``path`` (and its parents) if need be, readable by its owner only. A folder shared
    by design (sticky, as ``/tmp``: a database put there) is left as it is: its files are
    private anyway, and taking it from everyone else would break the machine."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    mode = path.stat().st_mode
    if mode & stat.S_ISVTX:
        return path
    if mode & 0o777 != FOLDER_MODE:
        path.chmod(FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty unless it exists; either way readable by its owner only. SQLite
    gives a database's ``-wal`` and ``-shm`` files the database file's own permissions."""
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    if path.stat().st_mode & 0o777 != FILE_MODE:
        path.chmod(FILE_MODE)
    return path


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///path``), or None (in memory, or not SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None
