"""The server's own key, for the secrets findesk must be able to use again and so cannot keep
hashed: an outbound webhook's signing secret is derived from this key and a random nonce stored
with the endpoint (``derived``), so the database alone never gives the secret away.

The key is ``FINDESK_SECRET_KEY`` when set (needed when findesk's processes run on several
machines); otherwise 32 random bytes made once in ``<data dir>/secret.key`` (0600), which every
process on the machine shares. Changing the key changes every derived secret: the webhooks'
receivers must then be given new ones.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from findesk.kit.files import FILE_MODE, private_folder
from findesk.kit.settings import Settings

KEY_FILE = "secret.key"
KEY_BYTES = 32


@functools.cache
def _key_file(path: Path) -> bytes:
    """The key in ``path``, made first if there is none (two processes racing make it once);
    read once per process (every webhook delivery signs with it)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        pass
    else:
        # Written whole before anyone can read it short: readers retry an empty or short file.
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES).hex().encode())
            out.flush()
            os.fsync(out.fileno())
    for _ in range(100):
        text = path.read_bytes().strip()
        if len(text) == KEY_BYTES * 2:
            return bytes.fromhex(text.decode())
        os.sched_yield()
    raise RuntimeError(f"{path} does not hold a key: delete it, or set FINDESK_SECRET_KEY")


def server_key(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return hashlib.sha256(settings.secret_key.get_secret_value().encode()).digest()
    return _key_file(settings.data_dir / KEY_FILE)


def derived(settings: Settings, purpose: str, nonce: str) -> bytes:
    """32 bytes only this server can make from ``nonce``, for ``purpose``."""
    return hmac.new(server_key(settings), f"{purpose}\0{nonce}".encode(), hashlib.sha256).digest()
