"""Users, a project and a document written straight to the database, with tokens.

Real-time tests use this instead of the REST routes so that they depend only
on the schema and the token signer.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from auth.access import Role
from auth.keys import TOKEN_SIGNER
from auth.models import User
from auth.tokens import TokenSigner
from auth.users import create_user
from eventstore import Database
from eventstore.keys import DATABASE
from eventstore.logs import create_log

_PROJECT = (
    "INSERT INTO projects (id, name, description, owner_id, created_at) VALUES ($1, $2, '', $3, $4)"
)
_MEMBER = (
    "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)"
)
_DOCUMENT = (
    "INSERT INTO documents (id, project_id, name, language, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'python', $4, $4)"
)


@dataclass
class Seeded:
    """What a test needs to connect: ids, users and their access tokens."""

    project_id: str
    doc_id: str
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


async def seed(app: web.Application, roles: dict[str, Role | None]) -> Seeded:
    """One project with one document; a user per name in ``roles`` (None: not a member).

    The first name with ``Role.OWNER`` (or, failing that, the first name) owns the project.
    """
    return await seed_database(app[DATABASE], app[TOKEN_SIGNER], roles)


async def seed_database(db: Database, signer: TokenSigner, roles: dict[str, Role | None]) -> Seeded:
    """:func:`seed` for a database outside an app (a node running in another process)."""
    now = time.time()
    users = {
        name: await create_user(
            db,
            email=f"{name}-{uuid.uuid4().hex[:8]}@example.com",
            display_name=name.title(),
            password_hash="unused",
        )
        for name in roles
    }
    owner = next((n for n, r in roles.items() if r is Role.OWNER), next(iter(roles)))
    seeded = Seeded(uuid.uuid4().hex, uuid.uuid4().hex, users)
    async with db.transaction() as conn:
        await conn.execute(_PROJECT, seeded.project_id, "Project", users[owner].id, now)
        for name, role in roles.items():
            if role is not None:
                await conn.execute(_MEMBER, seeded.project_id, users[name].id, role.label, now)
        await conn.execute(_DOCUMENT, seeded.doc_id, seeded.project_id, "main.py", now)
        await create_log(conn, seeded.doc_id)
    seeded.tokens = {name: signer.issue_access(user.id) for name, user in users.items()}
    return seeded


async def add_document(app: web.Application, project_id: str) -> str:
    """Another document in the same project."""
    doc_id = uuid.uuid4().hex
    async with app[DATABASE].transaction() as conn:
        await conn.execute(_DOCUMENT, doc_id, project_id, "other.py", time.time())
        await create_log(conn, doc_id)
    return doc_id


def ws_path(seeded: Seeded, who: str) -> str:
    """The WebSocket path of the seeded document with ``who``'s token."""
    return f"/ws/{seeded.doc_id}?token={seeded.tokens[who]}"


def bearer(seeded: Seeded, who: str) -> dict[str, str]:
    """An ``Authorization`` header with ``who``'s token."""
    return {"Authorization": f"Bearer {seeded.tokens[who]}"}
