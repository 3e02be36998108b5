"""``/api/projects/{project_id}/invites`` and ``/api/invites/{token}/accept``.

The owner creates invitations (optionally for one email), lists and revokes
them; anyone logged in accepts one with its token and joins the project
with its role. An existing member keeps a higher role (the owner stays
owner). See ``invite_store`` for how tokens are kept.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from auth.access import Role, current_user, project_role, require_project_role
from collab.api.invite_schemas import InviteCreateSchema, InviteListSchema, NewInviteSchema
from collab.api.invite_store import (
    InviteGoneError,
    create_invite,
    list_invites,
    merged_role,
    own_origin,
    revoke_invite,
    spend_invite,
)
from collab.api.members import live_member
from collab.api.project_schemas import ProjectSchema, project_json
from collab.api.projects import PROJECT_ID, lock_project
from collab.live.lifecycle import publish
from eventstore import Connection
from eventstore.keys import DATABASE
from webcore import validation
from webcore.errors import NotFoundError
from webcore.openapi_errors import error_responses

routes = web.RouteTableDef()
TAGS = ["invites"]
INVITE_ID = {
    "in": "path",
    "name": "invite_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "The invitation's id.",
}
TOKEN = {
    "in": "path",
    "name": "token",
    "required": True,
    "schema": {"type": "string", "maxLength": 128},
    "description": "The invitation's secret token.",
}
_INSERT_MEMBER = (
    "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)"
)
_UPDATE_ROLE = "UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2"
_MEMBER = """
SELECT m.user_id, u.email, u.display_name, m.role
FROM project_members m JOIN users u ON u.id = m.user_id
WHERE m.project_id = $1 AND m.user_id = $2"""
_PROJECT = """
SELECT p.id, p.name, p.description, p.owner_id, p.created_at, m.role
FROM projects p
JOIN project_members m ON m.project_id = p.id AND m.user_id = $1
WHERE p.id = $2"""


@routes.post("/api/projects/{project_id}/invites")
@docs(
    tags=TAGS,
    summary="Invite someone to a project",
    description="Owner only. Answers with the token (shown this once) and a `url` to send:"
    " `<server>/#invite=<token>`. With `email`, only that account may accept. Expires after"
    " `expires_in_hours` (default 72); used once.",
    parameters=[PROJECT_ID],
)
@request_schema(InviteCreateSchema, required=True)
@response_schema(NewInviteSchema, 201, description="The invitation with its token.")
async def create(request: web.Request) -> web.Response:
    """Create an invitation."""
    data = validation.body(request)
    db, user_id, project_id = request.app[DATABASE], current_user(request).id, _project(request)
    async with db.transaction() as conn:
        await lock_project(db, conn, project_id)
        await require_project_role(conn, project_id, user_id, Role.OWNER)
        invite = await create_invite(
            conn, project_id, user_id, data["role"], data["email"], data["expires_in_hours"]
        )
    return web.json_response(invite.json(own_origin(request)), status=201)


@routes.get("/api/projects/{project_id}/invites")
@docs(
    tags=TAGS,
    summary="List a project's invitations",
    description="Owner only. Newest first, each with its `status`; tokens are never shown.",
    parameters=[PROJECT_ID],
)
@response_schema(InviteListSchema, 200, description="The invitations.")
async def list_all(request: web.Request) -> web.Response:
    """List invitations."""
    db, project_id = request.app[DATABASE], _project(request)
    await require_project_role(db, project_id, current_user(request).id, Role.OWNER)
    return web.json_response({"items": await list_invites(db, project_id)})


@routes.delete("/api/projects/{project_id}/invites/{invite_id}")
@docs(
    tags=TAGS,
    summary="Revoke an invitation",
    description="Owner only. Its token stops working at once; revoking twice is harmless."
    " An unknown id is 404 `invite_not_found`.",
    parameters=[PROJECT_ID, INVITE_ID],
    responses={
        204: {"description": "Revoked."},
        **error_responses(404, s404="`invite_not_found`, or not the owner's project."),
    },
)
async def revoke(request: web.Request) -> web.Response:
    """Revoke an invitation."""
    db, project_id = request.app[DATABASE], _project(request)
    async with db.transaction() as conn:
        await require_project_role(conn, project_id, current_user(request).id, Role.OWNER)
        await revoke_invite(conn, project_id, request.match_info["invite_id"])
    return web.Response(status=204)


@routes.post("/api/invites/{token}/accept")
@docs(
    tags=TAGS,
    summary="Accept an invitation",
    description="Any logged-in account (only the named one if the invitation has an"
    " `email`: else 403 `invite_wrong_email`). The caller joins with the invitation's role;"
    " a member keeps a higher role. Accepting twice is harmless. Unknown token: 404"
    " `invite_not_found`; expired, revoked or used by someone else: 410 `invite_gone`.",
    parameters=[TOKEN],
    responses=error_responses(
        403,
        404,
        410,
        s403="`invite_wrong_email`: the invitation is for another email address.",
        s404="`invite_not_found`: no invitation has this token.",
        s410="`invite_gone`: the invitation expired, was revoked, or was used.",
    ),
)
@response_schema(ProjectSchema, 200, description="The project, with the caller's role.")
async def accept(request: web.Request) -> web.Response:
    """Join a project with an invitation token."""
    user = current_user(request)
    db = request.app[DATABASE]
    async with db.transaction() as conn:
        row, fresh = await spend_invite(conn, request.match_info["token"], user.id, user.email)
        project_id = row["project_id"]
        current = await project_role(conn, project_id, user.id)
        if not fresh and current is None:
            raise InviteGoneError("this invitation was used; ask for a new one")
        role = merged_role(current, row["role"])
        await _join(conn, project_id, user.id, current, role)
        project = await conn.fetchrow(_PROJECT, user.id, project_id)
        member = await conn.fetchrow(_MEMBER, project_id, user.id)
    if project is None or member is None:  # the project went away in between
        raise NotFoundError("project not found")
    if role != current:
        kind = "member.added" if current is None else "member.updated"
        await publish(request.app, kind, project_id, live_member(project_id, member))
    return web.json_response(project_json(project))


async def _join(
    conn: Connection, project_id: str, user_id: str, current: Role | None, role: Role
) -> None:
    if current is None:
        await conn.execute(_INSERT_MEMBER, project_id, user_id, role.label, time.time())
    elif role != current:
        await conn.execute(_UPDATE_ROLE, project_id, user_id, role.label)


def _project(request: web.Request) -> str:
    return request.match_info["project_id"]
