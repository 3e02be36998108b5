"""``/api/projects``: create, list, read, rename and delete projects.

The creator is the one owner, recorded both as ``projects.owner_id`` and as
an ``owner`` row in ``project_members``; every role check reads the latter.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from auth.access import Role, current_user, require_project_role
from collab.api.project_schemas import (
    ProjectCreateSchema,
    ProjectListSchema,
    ProjectSchema,
    ProjectUpdateSchema,
    project_json,
)
from collab.live.lifecycle import publish
from collab.realtime.keys import ACCESS_CHANGES
from eventstore import Connection, Database, Row
from eventstore.keys import DATABASE
from eventstore.logs import delete_logs
from webcore import validation
from webcore.errors import NotFoundError

routes = web.RouteTableDef()
TAGS = ["projects"]
PROJECT_ID = {
    "in": "path",
    "name": "project_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "The project's id.",
}

_INSERT_PROJECT = (
    "INSERT INTO projects (id, name, description, owner_id, created_at) VALUES ($1, $2, $3, $4, $5)"
)
_INSERT_OWNER = (
    "INSERT INTO project_members (project_id, user_id, role, created_at)"
    " VALUES ($1, $2, 'owner', $3)"
)
_SELECT_COLUMNS = """
SELECT p.id, p.name, p.description, p.owner_id, p.created_at, m.role
FROM projects p
JOIN project_members m ON m.project_id = p.id AND m.user_id = $1"""
_SELECT_ONE = _SELECT_COLUMNS + " WHERE p.id = $2"
_SELECT_MINE = _SELECT_COLUMNS + " ORDER BY p.created_at DESC, p.id"
# COALESCE keeps a field the PATCH body left out.
_UPDATE = (
    "UPDATE projects SET name = COALESCE($2, name), description = COALESCE($3, description)"
    " WHERE id = $1"
)
_DOCUMENT_IDS = "SELECT id FROM documents WHERE project_id = $1"
_LOCK = "SELECT id FROM projects WHERE id = $1"
_DELETE = "DELETE FROM projects WHERE id = $1"


@routes.post("/api/projects")
@docs(
    tags=TAGS,
    summary="Create a project",
    description="The caller becomes its owner (there is exactly one owner).",
)
@request_schema(ProjectCreateSchema, required=True)
@response_schema(ProjectSchema, 201, description="The new project; `role` is `owner`.")
async def create_project(request: web.Request) -> web.Response:
    """Create a project owned by the caller."""
    data = validation.body(request)
    user = current_user(request)
    project_id, now = uuid.uuid4().hex, time.time()
    async with request.app[DATABASE].transaction() as conn:
        await conn.execute(
            _INSERT_PROJECT, project_id, data["name"], data["description"], user.id, now
        )
        await conn.execute(_INSERT_OWNER, project_id, user.id, now)
        row = await _project(conn, project_id, user.id)
    await publish(request.app, "project.created", project_id, live_project(row))
    return web.json_response(project_json(row), status=201)


@routes.get("/api/projects")
@docs(tags=TAGS, summary="List the caller's projects", description="Newest first.")
@response_schema(ProjectListSchema, 200, description="Every project the caller is a member of.")
async def list_projects(request: web.Request) -> web.Response:
    """The projects the caller is a member of."""
    rows = await request.app[DATABASE].fetch(_SELECT_MINE, current_user(request).id)
    return web.json_response({"items": [project_json(row) for row in rows]})


@routes.get("/api/projects/{project_id}")
@docs(
    tags=TAGS,
    summary="Read a project",
    description="Any member. A project the caller is not a member of is 404.",
    parameters=[PROJECT_ID],
)
@response_schema(ProjectSchema, 200, description="The project with the caller's role.")
async def get_project(request: web.Request) -> web.Response:
    """One project the caller is a member of."""
    db, user_id, project_id = _context(request)
    await require_project_role(db, project_id, user_id)
    return web.json_response(project_json(await _project(db, project_id, user_id)))


@routes.patch("/api/projects/{project_id}")
@docs(
    tags=TAGS,
    summary="Rename or re-describe a project",
    description="Owner only. Fields left out keep their value.",
    parameters=[PROJECT_ID],
)
@request_schema(ProjectUpdateSchema, required=True)
@response_schema(ProjectSchema, 200, description="The updated project.")
async def update_project(request: web.Request) -> web.Response:
    """Change a project's name and/or description."""
    data = validation.body(request)
    db, user_id, project_id = _context(request)
    async with db.transaction() as conn:
        await require_project_role(conn, project_id, user_id, Role.OWNER)
        await conn.execute(_UPDATE, project_id, data.get("name"), data.get("description"))
        row = await _project(conn, project_id, user_id)
    await publish(request.app, "project.updated", project_id, live_project(row))
    return web.json_response(project_json(row))


@routes.delete("/api/projects/{project_id}")
@docs(
    tags=TAGS,
    summary="Delete a project",
    description="Owner only. Deletes its members, documents and their event logs;"
    " open connections to its documents are closed.",
    parameters=[PROJECT_ID],
    responses={204: {"description": "Deleted."}},
)
async def delete_project(request: web.Request) -> web.Response:
    """Delete a project with everything in it."""
    db, user_id, project_id = _context(request)
    async with db.transaction() as conn:
        await lock_project(db, conn, project_id)
        await require_project_role(conn, project_id, user_id, Role.OWNER)
        doc_ids = [row["id"] for row in await conn.fetch(_DOCUMENT_IDS, project_id)]
        # doc_heads has no foreign key to documents: the logs go explicitly.
        await delete_logs(conn, doc_ids)
        await conn.execute(_DELETE, project_id)
    await request.app[ACCESS_CHANGES].documents_deleted(doc_ids)
    gone = {"id": project_id, "project_id": project_id}
    await publish(request.app, "project.deleted", project_id, gone)
    return web.Response(status=204)


async def lock_project(db: Database, conn: Connection, project_id: str) -> None:
    """Hold the project's row until ``conn``'s transaction ends.

    Deleting a project and adding a document or member to it take this lock
    first, so an insert cannot slip in between the delete's listing of the
    documents (whose logs it removes) and its commit, nor fail on a foreign
    key half-way. SQLite has a single writer, so there it is a plain read.
    """
    await conn.fetchval(_LOCK + db.dialect.for_update, project_id)


def live_project(row: Row) -> dict[str, Any]:
    """A project as live events carry it: without a role (each member has their own)."""
    data = project_json(row)
    del data["role"]
    data["project_id"] = data["id"]
    return data


def _context(request: web.Request) -> tuple[Database, str, str]:
    return request.app[DATABASE], current_user(request).id, request.match_info["project_id"]


async def _project(conn: Connection, project_id: str, user_id: str) -> Row:
    row = await conn.fetchrow(_SELECT_ONE, user_id, project_id)
    if row is None:  # only after a concurrent delete: the caller's role was checked
        raise NotFoundError("project not found")
    return row
