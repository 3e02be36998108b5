"""A project's trash: deleted documents, their logs kept until the trash is purged.

A trashed document has no ``documents`` row, so every route and socket treats
it as unknown (404/4404); its row waits in ``doc_trash``. Undeleting moves the
row back. A database trigger removes a trashed document's log when its trash
row goes for any other reason: the purge, or its project being deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, response_schema
from marshmallow import Schema, fields

from auth.access import Role, current_user, require_project_role
from collab.api.document_schemas import DocumentSchema, document_json
from collab.api.documents import DOC_ID, document_row
from collab.api.projects import PROJECT_ID
from collab.keys import SETTINGS
from collab.live.lifecycle import publish
from eventstore import Database, Row
from eventstore.keys import DATABASE
from webcore.errors import NotFoundError
from webcore.fields import iso_time

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()
TAGS = ["documents"]
PURGE_EVERY_SECONDS = 3600.0
_LIST = """
SELECT t.id, t.project_id, t.name, t.language, t.created_at, t.updated_at, t.deleted_at,
       t.deleted_by, COALESCE(h.seq, 0) AS head_seq
FROM doc_trash t LEFT JOIN doc_heads h ON h.doc_id = t.id
WHERE t.project_id = $1 ORDER BY t.deleted_at DESC, t.id"""
_PROJECT_OF = "SELECT project_id FROM doc_trash WHERE id = $1"
_RESTORE = """
INSERT INTO documents (id, project_id, name, language, created_at, updated_at)
SELECT id, project_id, name, language, created_at, $2 FROM doc_trash WHERE id = $1"""
_FORGET = "DELETE FROM doc_trash WHERE id = $1"
_EXPIRED = "SELECT id FROM doc_trash WHERE deleted_at < $1"


class TrashedDocumentSchema(DocumentSchema):
    """A document in the trash: when and by whom it was deleted."""

    deleted_at = fields.DateTime(metadata={"example": "2025-01-31T09:30:00.000000Z"})
    deleted_by = fields.String(allow_none=True)


class TrashSchema(Schema):
    """The project's trash, most recently deleted first."""

    items = fields.List(fields.Nested(TrashedDocumentSchema))


def trashed_json(row: Row) -> dict[str, Any]:
    """A trash row as the API renders it."""
    return document_json(row) | {
        "deleted_at": iso_time(row["deleted_at"]),
        "deleted_by": row["deleted_by"],
    }


@routes.get("/api/projects/{project_id}/trash")
@docs(tags=TAGS, summary="The project's deleted documents", parameters=[PROJECT_ID])
@response_schema(TrashSchema, 200, description="The trashed documents.")
async def list_trash(request: web.Request) -> web.Response:
    """Any member: the documents waiting in the trash."""
    db, project_id = request.app[DATABASE], request.match_info["project_id"]
    await require_project_role(db, project_id, current_user(request).id)
    rows = await db.fetch(_LIST, project_id)
    return web.json_response({"items": [trashed_json(row) for row in rows]})


@routes.post("/api/documents/{doc_id}/undelete")
@docs(
    tags=TAGS,
    summary="Bring a document back from the trash",
    description="Owner only. The document returns with its whole log.",
    parameters=[DOC_ID],
)
@response_schema(DocumentSchema, 200, description="The document, back.")
async def undelete(request: web.Request) -> web.Response:
    """Move the document's row back from the trash."""
    doc_id = request.match_info["doc_id"]
    async with request.app[DATABASE].transaction() as conn:
        project_id = await conn.fetchval(_PROJECT_OF, doc_id)
        if project_id is None:
            raise NotFoundError("no such document in the trash")
        await require_project_role(conn, project_id, current_user(request).id, Role.OWNER)
        await conn.execute(_RESTORE, doc_id, time.time())
        await conn.execute(_FORGET, doc_id)  # the document exists again: its log stays
        row = await document_row(conn, doc_id)
    await publish(request.app, "document.undeleted", project_id, document_json(row))
    return web.json_response(document_json(row))


async def purge_trash(db: Database, older_than: float) -> list[str]:
    """Remove documents deleted before ``older_than`` (epoch seconds) with their logs."""
    purged = []
    for row in await db.fetch(_EXPIRED, older_than):
        async with db.transaction() as conn:
            await conn.execute(_FORGET, row["id"])  # the trigger removes the log
        purged.append(row["id"])
    return purged


async def _purge_forever(app: web.Application) -> None:
    keep = app[SETTINGS].trash_days * 86400
    while True:
        try:
            purged = await purge_trash(app[DATABASE], time.time() - keep)
            if purged:
                logger.info("purged %d document(s) from the trash", len(purged))
        except Exception as exc:  # a database hiccup: try again next round
            logger.warning("trash purge failed: %s", exc)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


async def trash_purge_ctx(app: web.Application) -> AsyncIterator[None]:
    """Purge the expired trash at start-up, then every hour, until shutdown."""
    task = asyncio.create_task(_purge_forever(app), name="trash-purge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
