"""Queries on the ``users`` table."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from auth.errors import EmailTakenError
from auth.models import User
from eventstore import Connection, Row, UniqueViolationError

_SELECT_BY_ID = "SELECT id, email, display_name, created_at FROM users WHERE id = $1"
_SELECT_BY_EMAIL = (
    "SELECT id, email, display_name, created_at, password_hash FROM users WHERE email = $1"
)
_INSERT = (
    "INSERT INTO users (id, email, display_name, password_hash, created_at)"
    " VALUES ($1, $2, $3, $4, $5)"
)
_UPDATE_HASH = "UPDATE users SET password_hash = $2 WHERE id = $1"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An account with its stored password hash (for login only)."""

    user: User
    password_hash: str


def normalise_email(email: str) -> str:
    """The form emails are stored and compared in: trimmed, lower case."""
    return email.strip().lower()


async def get_user(db: Connection, user_id: str) -> User | None:
    """The account with this id, or None if there is none (or it was deleted)."""
    row = await db.fetchrow(_SELECT_BY_ID, user_id)
    return None if row is None else user_of_row(row)


async def get_credentials(db: Connection, email: str) -> Credentials | None:
    """The account and password hash for ``email`` (any case), or None."""
    row = await db.fetchrow(_SELECT_BY_EMAIL, normalise_email(email))
    return None if row is None else Credentials(user_of_row(row), row["password_hash"])


async def create_user(db: Connection, *, email: str, display_name: str, password_hash: str) -> User:
    """Insert a new account.

    Raises:
        EmailTakenError: the email is already registered (also when two
            registrations race: the unique index decides).
    """
    user = User(uuid.uuid4().hex, normalise_email(email), display_name, time.time())
    try:
        await db.execute(
            _INSERT, user.id, user.email, user.display_name, password_hash, user.created_at
        )
    except UniqueViolationError:
        raise EmailTakenError() from None
    return user


async def set_password_hash(db: Connection, user_id: str, password_hash: str) -> None:
    """Replace the stored hash (after a login, when the parameters changed)."""
    await db.execute(_UPDATE_HASH, user_id, password_hash)


def user_of_row(row: Row) -> User:
    """The account in a row holding ``id``, ``email``, ``display_name`` and ``created_at``."""
    return User(row["id"], row["email"], row["display_name"], float(row["created_at"]))
