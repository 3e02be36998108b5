"""Document metadata: create, list, read, rename and delete documents.

A document's row and its event log's head are created in one transaction,
so neither exists without the other. Deleting a document moves its row to
its project's trash (``doc_trash``) and keeps the log, so it can be brought
back until the trash is purged (``collab.api.trash``). The document's
content, history and the other log-backed routes live in their own modules.
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from auth.access import Role, current_user, require_document_role, require_project_role
from collab.api.document_schemas import (
    DocumentCreateSchema,
    DocumentListSchema,
    DocumentSchema,
    DocumentUpdateSchema,
    document_json,
)
from collab.api.projects import PROJECT_ID, lock_project
from collab.live.lifecycle import publish
from collab.realtime.keys import ACCESS_CHANGES
from eventstore import Connection, Row
from eventstore.keys import DATABASE
from eventstore.logs import create_log
from webcore import validation
from webcore.errors import NotFoundError

routes = web.RouteTableDef()
TAGS = ["documents"]
DOC_ID = {
    "in": "path",
    "name": "doc_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "The document's id.",
}

_INSERT = (
    "INSERT INTO documents (id, project_id, name, language, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $5)"
)
_SELECT_COLUMNS = """
SELECT d.id, d.project_id, d.name, d.language, d.created_at, d.updated_at,
       COALESCE(h.seq, 0) AS head_seq
FROM documents d
LEFT JOIN doc_heads h ON h.doc_id = d.id"""
_SELECT_ONE = _SELECT_COLUMNS + " WHERE d.id = $1"
_SELECT_PROJECT = _SELECT_COLUMNS + " WHERE d.project_id = $1 ORDER BY d.name, d.id"
_UPDATE = (
    "UPDATE documents SET name = COALESCE($2, name), language = COALESCE($3, language),"
    " updated_at = $4 WHERE id = $1"
)
_DELETE = "DELETE FROM documents WHERE id = $1"
_TO_TRASH = """
INSERT INTO doc_trash
    (id, project_id, name, language, created_at, updated_at, deleted_at, deleted_by)
SELECT id, project_id, name, language, created_at, updated_at, $2, $3
FROM documents WHERE id = $1"""


@routes.post("/api/projects/{project_id}/documents")
@docs(
    tags=TAGS,
    summary="Create a document",
    description="Editor or owner. Its text starts empty (`head_seq` 0); edit it over"
    " `ws://HOST:PORT/ws/{doc_id}?token=ACCESS_TOKEN`.",
    parameters=[PROJECT_ID],
)
@request_schema(DocumentCreateSchema, required=True)
@response_schema(DocumentSchema, 201, description="The new document.")
async def create_document(request: web.Request) -> web.Response:
    """Create an empty document in a project."""
    data = validation.body(request)
    project_id = request.match_info["project_id"]
    db = request.app[DATABASE]
    async with db.transaction() as conn:
        await lock_project(db, conn, project_id)
        await require_project_role(conn, project_id, current_user(request).id, Role.EDITOR)
        doc_id = await insert_document(conn, project_id, data["name"], data["language"])
        row = await document_row(conn, doc_id)
    await publish(request.app, "document.created", project_id, document_json(row))
    return web.json_response(document_json(row), status=201)


@routes.get("/api/projects/{project_id}/documents")
@docs(
    tags=TAGS,
    summary="List a project's documents",
    description="Any member. In name order.",
    parameters=[PROJECT_ID],
)
@response_schema(DocumentListSchema, 200, description="The project's documents.")
async def list_documents(request: web.Request) -> web.Response:
    """The documents of a project the caller belongs to."""
    db, project_id = request.app[DATABASE], request.match_info["project_id"]
    await require_project_role(db, project_id, current_user(request).id)
    rows = await db.fetch(_SELECT_PROJECT, project_id)
    return web.json_response({"items": [document_json(row) for row in rows]})


@routes.get("/api/documents/{doc_id}")
@docs(tags=TAGS, summary="Read a document's metadata", parameters=[DOC_ID])
@response_schema(DocumentSchema, 200, description="The document.")
async def get_document(request: web.Request) -> web.Response:
    """One document in a project the caller belongs to."""
    db, doc_id = request.app[DATABASE], request.match_info["doc_id"]
    await require_document_role(db, doc_id, current_user(request).id)
    return web.json_response(document_json(await document_row(db, doc_id)))


@routes.patch("/api/documents/{doc_id}")
@docs(
    tags=TAGS,
    summary="Rename a document or change its language",
    description="Editor or owner. Fields left out keep their value.",
    parameters=[DOC_ID],
)
@request_schema(DocumentUpdateSchema, required=True)
@response_schema(DocumentSchema, 200, description="The updated document.")
async def update_document(request: web.Request) -> web.Response:
    """Change a document's name and/or language."""
    data = validation.body(request)
    doc_id = request.match_info["doc_id"]
    async with request.app[DATABASE].transaction() as conn:
        await require_document_role(conn, doc_id, current_user(request).id, Role.EDITOR)
        if data:  # an empty PATCH changes nothing, not even updated_at
            await conn.execute(_UPDATE, doc_id, data.get("name"), data.get("language"), time.time())
        row = await document_row(conn, doc_id)
    if data:
        await publish(request.app, "document.updated", row["project_id"], document_json(row))
    return web.json_response(document_json(row))


@routes.delete("/api/documents/{doc_id}")
@docs(
    tags=TAGS,
    summary="Move a document to its project's trash",
    description="Owner only. Open connections close with 4404 and reads answer 404; the"
    " document and its whole log can be brought back with `POST"
    " /api/documents/{doc_id}/undelete` until the trash is purged (`COLLAB_TRASH_DAYS`).",
    parameters=[DOC_ID],
    responses={204: {"description": "Moved to the trash."}},
)
async def delete_document(request: web.Request) -> web.Response:
    """Move a document to the trash, keeping its log."""
    doc_id = request.match_info["doc_id"]
    user_id = current_user(request).id
    async with request.app[DATABASE].transaction() as conn:
        access = await require_document_role(conn, doc_id, user_id, Role.OWNER)
        await conn.execute(_TO_TRASH, doc_id, time.time(), user_id)
        await conn.execute(_DELETE, doc_id)
    await request.app[ACCESS_CHANGES].documents_deleted([doc_id])
    gone = {"id": doc_id, "project_id": access.project_id}
    await publish(request.app, "document.deleted", access.project_id, gone)
    return web.Response(status=204)


async def insert_document(conn: Connection, project_id: str, name: str, language: str) -> str:
    """Insert a document with an empty log (in the caller's transaction); return its id."""
    doc_id = uuid.uuid4().hex
    await conn.execute(_INSERT, doc_id, project_id, name, language, time.time())
    await create_log(conn, doc_id)
    return doc_id


async def document_row(conn: Connection, doc_id: str) -> Row:
    """A document's metadata joined with its log head.

    Raises:
        NotFoundError: it does not exist (any more).
    """
    row = await conn.fetchrow(_SELECT_ONE, doc_id)
    if row is None:  # only after a concurrent delete: access was checked
        raise NotFoundError("document not found")
    return row
