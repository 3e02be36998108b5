"""Who may do what: project roles and the lookups every route shares.

A caller who is not a member of a project gets :class:`NotVisibleError`
(404) for the project and everything in it, so existence never leaks; a
member whose role is too low gets :class:`RoleTooLowError` (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from aiohttp import web

from auth.keys import CURRENT_USER
from auth.models import User
from auth.users import user_of_row
from eventstore import Connection, Row
from eventstore.keys import DATABASE


class NotVisibleError(Exception):
    """No such project or document, or the caller is not a member (404)."""

    status: ClassVar[int] = 404
    code: ClassVar[str] = "not_found"


class RoleTooLowError(Exception):
    """A member whose role does not allow this (403)."""

    status: ClassVar[int] = 403
    code: ClassVar[str] = "forbidden"


class Role(IntEnum):
    """Project roles, ordered so that ``role >= Role.EDITOR`` reads naturally."""

    VIEWER = 1
    EDITOR = 2
    OWNER = 3

    @property
    def label(self) -> str:
        """The name used in the API (``"owner"``, ``"editor"``, ``"viewer"``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Role:
        """The role named ``label``.

        Raises:
            ValueError: not a role name.
        """
        return cls[label.upper()]


@dataclass(frozen=True, slots=True)
class DocumentAccess:
    """A document the caller can see, with the caller's role in its project.

    Attributes:
        doc_id: The document.
        project_id: The project that holds it.
        role: The caller's role in that project.
        language: The document's language (what running it means).
    """

    doc_id: str
    project_id: str
    role: Role
    language: str


_MEMBER_ROLE = "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2"
_DOCUMENT_ROLE = """
SELECT d.project_id, d.language, m.role
FROM documents d
JOIN project_members m ON m.project_id = d.project_id AND m.user_id = $2
WHERE d.id = $1"""


# The account and its role in the document's project in one round trip: the
# upgrade of every WebSocket needs both, and in a reconnect storm those reads
# queue behind each other (see collab.realtime.endpoint's admission slots).
_ACCOUNT_AND_DOCUMENT_ROLE = """
SELECT u.id, u.email, u.display_name, u.created_at, d.project_id, d.language, m.role
FROM users u
LEFT JOIN documents d ON d.id = $2
LEFT JOIN project_members m ON m.project_id = d.project_id AND m.user_id = u.id
WHERE u.id = $1"""


def current_user(request: web.Request) -> User:
    """The authenticated caller (set by the auth middleware)."""
    return request[CURRENT_USER]


async def project_role(db: Connection, project_id: str, user_id: str) -> Role | None:
    """The user's role in the project, or None when not a member (or no such project)."""
    label = await db.fetchval(_MEMBER_ROLE, project_id, user_id)
    return None if label is None else Role.parse(label)


async def require_project_role(
    db: Connection, project_id: str, user_id: str, minimum: Role = Role.VIEWER
) -> Role:
    """The caller's role, if at least ``minimum``.

    Raises:
        NotVisibleError: no such project, or the caller is not a member.
        RoleTooLowError: a member whose role is below ``minimum``.
    """
    role = await project_role(db, project_id, user_id)
    return _check(role, minimum, "project")


async def document_access(db: Connection, doc_id: str, user_id: str) -> DocumentAccess | None:
    """The document and the user's role in its project, or None if not visible."""
    row = await db.fetchrow(_DOCUMENT_ROLE, doc_id, user_id)
    return None if row is None else _access_of_row(doc_id, row)


async def account_and_document_access(
    db: Connection, user_id: str, doc_id: str
) -> tuple[User, DocumentAccess | None] | None:
    """The live account ``user_id`` and its access to ``doc_id`` (None if not visible).

    None when the account no longer exists. One query: what
    :func:`auth.users.get_user` and :func:`document_access` read together.
    """
    row = await db.fetchrow(_ACCOUNT_AND_DOCUMENT_ROLE, user_id, doc_id)
    if row is None:
        return None
    access = None if row["role"] is None else _access_of_row(doc_id, row)
    return user_of_row(row), access


def _access_of_row(doc_id: str, row: Row) -> DocumentAccess:
    return DocumentAccess(doc_id, row["project_id"], Role.parse(row["role"]), row["language"])


async def require_document_role(
    db: Connection, doc_id: str, user_id: str, minimum: Role = Role.VIEWER
) -> DocumentAccess:
    """Like :func:`require_project_role`, for the project that holds ``doc_id``.

    Raises:
        NotVisibleError: no such document, or the caller is not a member of its project.
        RoleTooLowError: a member whose role is below ``minimum``.
    """
    access = await document_access(db, doc_id, user_id)
    _check(None if access is None else access.role, minimum, "document")
    assert access is not None
    return access


async def require_request_document(
    request: web.Request, minimum: Role = Role.VIEWER, *, key: str = "doc_id"
) -> DocumentAccess:
    """:func:`require_document_role` for the current caller and the path's document id."""
    return await require_document_role(
        request.app[DATABASE], request.match_info[key], current_user(request).id, minimum
    )


def _check(role: Role | None, minimum: Role, what: str) -> Role:
    if role is None:
        raise NotVisibleError(f"{what} not found")
    if role < minimum:
        raise RoleTooLowError(f"this needs the {minimum.label} role; you are {role.label}")
    return role
