"""Project invitations: create, list, revoke and accept, with only token digests stored.

A token is 32 random bytes (URL-safe base64); its SHA-256 digest is the
row's key, so the table alone cannot be used to join a project. An
invitation is used once: accepting it is a conditional UPDATE, so two
people cannot both spend one token. Accepting again by the person who
accepted it is harmless (idempotent).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from auth.access import Role
from eventstore import Connection, Row
from webcore.errors import ForbiddenError, NotFoundError
from webcore.fields import iso_time
from webcore.origins import ORIGIN_POLICY, OriginPolicy

TOKEN_BYTES = 32
TOKEN_MAX = 128  # a token in a path longer than this is not one of ours
DEFAULT_HOURS = 72
MAX_HOURS = 24 * 30

_INSERT = (
    "INSERT INTO project_invites (id, project_id, token_hash, role, email, created_by,"
    " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
_COLUMNS = (
    "SELECT id, project_id, role, email, created_at, expires_at, revoked_at, accepted_at,"
    " accepted_by FROM project_invites"
)
_LIST = _COLUMNS + " WHERE project_id = $1 ORDER BY created_at DESC, id"
_BY_HASH = _COLUMNS + " WHERE token_hash = $1"
_REVOKE = (
    "UPDATE project_invites SET revoked_at = $3"
    " WHERE id = $1 AND project_id = $2 AND revoked_at IS NULL AND accepted_at IS NULL"
)
_EXISTS = "SELECT id FROM project_invites WHERE id = $1 AND project_id = $2"
# Spending is one conditional UPDATE: of two concurrent accepts exactly one matches.
_SPEND = (
    "UPDATE project_invites SET accepted_at = $2, accepted_by = $3 WHERE token_hash = $1"
    " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2"
)


class InviteNotFoundError(NotFoundError):
    """No invitation has this token or id (or it is not the caller's project's)."""

    code = "invite_not_found"


class InviteGoneError(Exception):
    """The invitation expired, was revoked or was already used by someone else (410)."""

    status = 410
    code = "invite_gone"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = {}
        self.headers: dict[str, str] = {}


class InviteWrongEmailError(ForbiddenError):
    """The invitation names another email than the caller's."""

    code = "invite_wrong_email"


@dataclass(frozen=True, slots=True)
class NewInvite:
    """A just-created invitation: the only time its token is known."""

    id: str
    token: str
    role: str
    email: str | None
    expires_at: float

    def json(self, origin: str) -> dict[str, Any]:
        """The 201 body; ``url`` opens the demo page, which reads ``#invite=``."""
        return {
            "id": self.id,
            "token": self.token,
            "url": f"{origin}/#invite={self.token}",
            "role": self.role,
            "email": self.email,
            "expires_at": iso_time(self.expires_at),
        }


def token_digest(token: str) -> str:
    """The stored form of an invitation token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_invite(
    conn: Connection,
    project_id: str,
    created_by: str,
    role: str,
    email: str | None,
    hours: int = DEFAULT_HOURS,
) -> NewInvite:
    """Store a new invitation and return it with its token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = time.time()
    invite = NewInvite(uuid.uuid4().hex, token, role, email, now + hours * 3600)
    await conn.execute(
        _INSERT,
        invite.id,
        project_id,
        token_digest(token),
        role,
        email,
        created_by,
        now,
        invite.expires_at,
    )
    return invite


async def list_invites(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    """Every invitation of a project, newest first, with its status (never its token)."""
    now = time.time()
    return [invite_json(row, now) for row in await conn.fetch(_LIST, project_id)]


async def revoke_invite(conn: Connection, project_id: str, invite_id: str) -> None:
    """Revoke a pending invitation; revoking a used or revoked one again is harmless.

    Raises:
        InviteNotFoundError: no invitation with this id in this project.
    """
    if await conn.fetchval(_EXISTS, invite_id, project_id) is None:
        raise InviteNotFoundError("no such invitation in this project")
    await conn.execute(_REVOKE, invite_id, project_id, time.time())


async def spend_invite(conn: Connection, token: str, user_id: str, email: str) -> tuple[Row, bool]:
    """Mark the invitation accepted by ``user_id``; return its row and whether it was unspent.

    When ``user_id`` had already accepted it, nothing changes and the flag is
    False: the caller decides whether that still means anything.

    Raises:
        InviteNotFoundError: unknown token.
        InviteWrongEmailError: the invitation names another email.
        InviteGoneError: expired, revoked, or already used by another account.
    """
    if not token or len(token) > TOKEN_MAX:
        raise InviteNotFoundError("no such invitation")
    digest = token_digest(token)
    row = await conn.fetchrow(_BY_HASH, digest)
    if row is None:
        raise InviteNotFoundError("no such invitation")
    if row["email"] is not None and row["email"] != email:
        raise InviteWrongEmailError("this invitation is for another email address")
    if row["accepted_by"] == user_id:
        return row, False
    if not await conn.execute(_SPEND, digest, time.time(), user_id):
        raise InviteGoneError(f"this invitation is {_status(row, time.time())}")
    return row, True


def merged_role(current: Role | None, invited: str) -> Role:
    """The role after accepting: never lower than the one the member already has."""
    role = Role.parse(invited)
    return role if current is None or current < role else current


def invite_json(row: Row, now: float) -> dict[str, Any]:
    """An invitation as the list shows it."""
    return {
        "id": row["id"],
        "role": row["role"],
        "email": row["email"],
        "status": _status(row, now),
        "created_at": iso_time(row["created_at"]),
        "expires_at": iso_time(row["expires_at"]),
        "accepted_by": row["accepted_by"],
    }


def _status(row: Row, now: float) -> str:
    if row["accepted_at"] is not None:
        return "accepted"
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] <= now:
        return "expired"
    return "pending"


def own_origin(request: web.Request) -> str:
    """The server's origin as the caller reached it (for links it can open)."""
    return (request.app.get(ORIGIN_POLICY) or OriginPolicy()).own_origin(request)
