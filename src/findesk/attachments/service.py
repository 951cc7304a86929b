"""Storing uploads on disk (streamed, size-checked) and describing them as message attachments."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from sqlalchemy.orm import Session

from findesk.attachments.models import StoredFile
from findesk.kit.errors import Invalid, NotFound
from findesk.kit.files import private_folder

CHUNK = 1024 * 1024
# Shown inline in the inbox; anything else (SVG and HTML included) downloads as an attachment.
INLINE_IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp"}

MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str | None
    stream: BinaryIO


def safe_filename(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/")).strip() or "file"
    name = re.sub(r"[\x00-\x1f\x7f/]", "_", name)
    return name[:200]


def store(
    session: Session,
    upload: Upload,
    *,
    directory: Path,
    conversation_id: str,
    agent_id: str | None,
    max_bytes: int,
) -> StoredFile:
    """Write the upload under a fresh random key; refuse it past ``max_bytes``."""
    private_folder(directory)
    key = secrets.token_urlsafe(32)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise Invalid(f"{upload.filename} is larger than {max_bytes} bytes.")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Invalid(f"{upload.filename} is empty.")
        os.replace(tmp, directory / key)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    filename = safe_filename(upload.filename)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    # Only a well-formed type is believed (RFC 6838: at most 127 characters each side); any
    # other, however long, is as good as none.
    if not MEDIA_TYPE.fullmatch(content_type) or content_type == "application/octet-stream":
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    row = StoredFile(
        key=key,
        conversation_id=conversation_id,
        uploaded_by=agent_id,
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=digest.hexdigest(),
    )
    session.add(row)
    return row


def as_attachment(row: StoredFile, base_url: str) -> dict[str, Any]:
    """The message attachment Fin sees in get_messages: url, filetype, filename."""
    extension = Path(row.filename).suffix.lstrip(".").lower()
    filetype = extension or (mimetypes.guess_extension(row.content_type) or "").lstrip(".")
    return {
        "url": f"{base_url}/files/{row.key}/{quote(row.filename)}",
        "filetype": filetype or None,
        "filename": row.filename,
    }


def get(session: Session, key: str) -> StoredFile:
    row = session.get(StoredFile, key)
    if row is None:
        raise NotFound("No such file.")
    return row


def discard(rows: list[StoredFile], directory: Path) -> None:
    """Remove the files of uploads whose message was not saved."""
    for row in rows:
        (directory / row.key).unlink(missing_ok=True)
