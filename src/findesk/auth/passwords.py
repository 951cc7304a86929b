"""Agents' passwords: argon2id hashes, checked in constant time by argon2 itself."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from findesk.kit.errors import Invalid

MIN_LENGTH = 10
MAX_LENGTH = 1024
_hasher = PasswordHasher()
# Verified against when the email is unknown, so that timing does not tell which emails exist.
_DUMMY_HASH = _hasher.hash("findesk-no-such-agent")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise Invalid(f"A password needs at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"A password has at most {MAX_LENGTH} characters.")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
