"""Password hashing with argon2id, off the event loop.

Hashing is deliberately slow and memory-hungry (argon2-cffi's defaults: 64 MiB,
three passes), so it runs in a worker thread, and a semaphore caps how many
run at once: past the number of cores, more threads only add memory.
"""

from __future__ import annotations

import asyncio
import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# The hasher every call uses. Tests swap in a cheap one (see tests/auth/fixtures.py);
# production keeps argon2-cffi's defaults, which select argon2id.
HASHER = PasswordHasher()
_SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
_DUMMY_PASSWORD = "not-a-real-password"  # noqa: S105 - hashed once, never accepted
_dummy: tuple[PasswordHasher, str] | None = None


async def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (with a fresh salt), computed in a thread."""
    return await asyncio.to_thread(_hash, HASHER, password)


async def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; computed in a thread."""
    return await asyncio.to_thread(_verify, HASHER, password_hash, password)


async def verify_dummy(password: str) -> None:
    """Spend as long as :func:`verify_password` does, for an email we do not know.

    Answering an unknown email at once would tell an attacker which emails
    have accounts; checking against a hash with the same parameters makes
    both failures take the same time.
    """
    global _dummy
    hasher = HASHER
    if _dummy is None or _dummy[0] is not hasher:
        _dummy = (hasher, await asyncio.to_thread(_hash, hasher, _DUMMY_PASSWORD))
    await asyncio.to_thread(_verify, hasher, _dummy[1], password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current ones."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def _hash(hasher: PasswordHasher, password: str) -> str:
    with _SLOTS:
        return hasher.hash(password)


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    with _SLOTS:
        try:
            return hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
