"""Random credentials, their storage hashes and constant-time checks.

Client secrets and tokens are 256-bit random values, so a plain SHA-256 is a safe storage hash
(nothing to brute-force); passwords, which people choose, use argon2 elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def secret_matches(value: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(value), stored_hash)
