"""Agents' passwords: argon2id hashes, checked in constant time by argon2 itself.

Checking a password costs tens of milliseconds of CPU and 64 MiB by design. Sign-ins check them
on a pool of their own with a bounded queue (``PasswordChecker``), so a burst of sign-ins waits
its turn, or is told the server is busy, instead of taking the CPU from Fin's calls.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from findesk.kit.errors import Invalid, Problem

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


class Busy(Problem):
    status = 503
    code = "busy"


class PasswordChecker:
    """At most ``workers`` password checks at once, and ``queue`` more waiting; beyond that a
    check is refused at once (503, try again in a second)."""

    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.queue = workers, queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="findesk-passwords")
        self._pending = 0
        self._lock = threading.Lock()

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        with self._lock:
            if self._pending >= self.workers + self.queue:
                raise Busy("Too many sign-ins at once. Try again.", headers={"Retry-After": "1"})
            self._pending += 1
        try:
            future = self._executor.submit(verify_password, stored_hash, password)
            return await asyncio.wrap_future(future)
        finally:
            with self._lock:
                self._pending -= 1
