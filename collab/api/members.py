"""``/api/projects/{project_id}/members``: who belongs to a project, with which role.

The owner's membership never changes: demoting or removing the owner is a
409 ``owner_fixed`` (the project would be left without its one owner). After
a removal or role change commits, :func:`collab.revocation.access_changed`
tells the real-time layer, which closes or downgrades open connections.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from auth.access import Role, current_user, require_project_role
from auth.users import normalise_email
from collab.api.invite_schemas import MemberInvitedSchema
from collab.api.invite_store import create_invite, own_origin
from collab.api.project_schemas import (
    MemberAddSchema,
    MemberListSchema,
    MemberRoleSchema,
    MemberSchema,
    member_json,
)
from collab.api.projects import PROJECT_ID, lock_project
from collab.live.lifecycle import publish
from collab.realtime.keys import ACCESS_CHANGES
from eventstore import Connection, Database, Row, UniqueViolationError
from eventstore.keys import DATABASE
from webcore import validation
from webcore.errors import ConflictError, ForbiddenError, NotFoundError

routes = web.RouteTableDef()
TAGS = ["members"]
USER_ID = {
    "in": "path",
    "name": "user_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "The member's user id.",
}
_OWNER_FIXED = {409: {"description": "`owner_fixed`: the owner's role cannot change."}}


class MemberNotFoundError(NotFoundError):
    """The user is not a member of this project."""

    code = "member_not_found"


class AlreadyMemberError(ConflictError):
    """The user is already a member of this project."""

    code = "already_member"


class OwnerFixedError(ConflictError):
    """The owner cannot be demoted or removed."""

    code = "owner_fixed"


_SELECT_COLUMNS = """
SELECT m.user_id, u.email, u.display_name, m.role
FROM project_members m
JOIN users u ON u.id = m.user_id"""
_SELECT_ALL = _SELECT_COLUMNS + " WHERE m.project_id = $1 ORDER BY m.created_at, m.user_id"
_SELECT_ONE = _SELECT_COLUMNS + " WHERE m.project_id = $1 AND m.user_id = $2"
_USER_BY_EMAIL = "SELECT id FROM users WHERE email = $1"
_INSERT = (
    "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)"
)
_UPDATE_ROLE = "UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2"
_DELETE = "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2"


@routes.get("/api/projects/{project_id}/members")
@docs(
    tags=TAGS,
    summary="List a project's members",
    description="Any member. In the order they joined, the owner first.",
    parameters=[PROJECT_ID],
)
@response_schema(MemberListSchema, 200, description="The members with their roles.")
async def list_members(request: web.Request) -> web.Response:
    """The members of a project the caller belongs to."""
    db, user_id, project_id = _context(request)
    await require_project_role(db, project_id, user_id)
    rows = await db.fetch(_SELECT_ALL, project_id)
    return web.json_response({"items": [member_json(row) for row in rows]})


@routes.post("/api/projects/{project_id}/members")
@docs(
    tags=TAGS,
    summary="Add a member by email",
    description="Owner only. Roles: `editor` or `viewer`. A user who is already a member is"
    " 409 `already_member`. When no account has this email yet, an invitation for that"
    " email is created instead (expires in 72 hours) and the answer is"
    ' `{"invite": {id, token, url, role, email, expires_at}}` (see'
    " `POST /api/projects/{project_id}/invites`): send its `url` to the person.",
    parameters=[PROJECT_ID],
    responses={
        201: {
            "description": "The new member, or `{invite}` for an email nobody registered.",
            "content": {
                "application/json": {"schema": {"oneOf": [MemberSchema, MemberInvitedSchema]}}
            },
        },
        404: {"description": "`not_found` (project)."},
        409: {"description": "`already_member`."},
    },
)
@request_schema(MemberAddSchema, required=True)
async def add_member(request: web.Request) -> web.Response:
    """Give an account a role in the project, or invite an email nobody registered."""
    data = validation.body(request)
    db, user_id, project_id = _context(request)
    email = normalise_email(data["email"])
    async with db.transaction() as conn:
        await lock_project(db, conn, project_id)
        await require_project_role(conn, project_id, user_id, Role.OWNER)
        member_id = await conn.fetchval(_USER_BY_EMAIL, email)
        if member_id is None:
            invite = await create_invite(conn, project_id, user_id, data["role"], email)
            return web.json_response({"invite": invite.json(own_origin(request))}, status=201)
        await _insert(conn, project_id, member_id, data["role"])
        row = await _member(conn, project_id, member_id)
    await publish(request.app, "member.added", project_id, live_member(project_id, row))
    return web.json_response(member_json(row), status=201)


@routes.patch("/api/projects/{project_id}/members/{user_id}")
@docs(
    tags=TAGS,
    summary="Change a member's role",
    description="Owner only. The owner's own role cannot change (409 `owner_fixed`)."
    " A demoted member's open connections lose write access at once.",
    parameters=[PROJECT_ID, USER_ID],
    responses=_OWNER_FIXED,
)
@request_schema(MemberRoleSchema, required=True)
@response_schema(MemberSchema, 200, description="The member with the new role.")
async def update_member(request: web.Request) -> web.Response:
    """Set a member's role to editor or viewer."""
    role = validation.body(request)["role"]
    db, user_id, project_id = _context(request)
    target = request.match_info["user_id"]
    async with db.transaction() as conn:
        await require_project_role(conn, project_id, user_id, Role.OWNER)
        before = await _changeable(conn, project_id, target)
        await conn.execute(_UPDATE_ROLE, project_id, target, role)
        row = await _member(conn, project_id, target)
    if before["role"] != role:
        await request.app[ACCESS_CHANGES].member_changed(project_id, target)
        await publish(request.app, "member.updated", project_id, live_member(project_id, row))
    return web.json_response(member_json(row))


@routes.delete("/api/projects/{project_id}/members/{user_id}")
@docs(
    tags=TAGS,
    summary="Remove a member",
    description="The owner may remove anyone but themself (409 `owner_fixed`); any member"
    " may remove themself (leave). The removed member's open connections are closed.",
    parameters=[PROJECT_ID, USER_ID],
    responses={204: {"description": "Removed."}, **_OWNER_FIXED},
)
async def remove_member(request: web.Request) -> web.Response:
    """Remove a member (or leave the project)."""
    db, user_id, project_id = _context(request)
    target = request.match_info["user_id"]
    async with db.transaction() as conn:
        role = await require_project_role(conn, project_id, user_id)
        if target != user_id and role < Role.OWNER:
            raise ForbiddenError("only the owner can remove other members")
        gone = await _changeable(conn, project_id, target)
        await conn.execute(_DELETE, project_id, target)
    await request.app[ACCESS_CHANGES].member_changed(project_id, target)
    await publish(request.app, "member.removed", project_id, live_member(project_id, gone))
    return web.Response(status=204)


def live_member(project_id: str, row: Row) -> dict[str, Any]:
    """A membership as live events carry it."""
    return {**member_json(row), "project_id": project_id}


def _context(request: web.Request) -> tuple[Database, str, str]:
    return request.app[DATABASE], current_user(request).id, request.match_info["project_id"]


async def _insert(conn: Connection, project_id: str, user_id: str, role: str) -> None:
    try:
        await conn.execute(_INSERT, project_id, user_id, role, time.time())
    except UniqueViolationError:
        raise AlreadyMemberError("this user is already a member") from None


async def _changeable(conn: Connection, project_id: str, user_id: str) -> Row:
    row = await _member(conn, project_id, user_id)
    if row["role"] == Role.OWNER.label:
        raise OwnerFixedError("the owner cannot be demoted or removed")
    return row


async def _member(conn: Connection, project_id: str, user_id: str) -> Row:
    row = await conn.fetchrow(_SELECT_ONE, project_id, user_id)
    if row is None:
        raise MemberNotFoundError("this user is not a member of the project")
    return row
