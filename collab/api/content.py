"""Reading a document's content over REST: its text and its Yjs state.

At the head, a document open on this node is read from its room (after its
pending updates are committed, so the answer equals what connected clients
see); otherwise, and for ``?at=SEQ``, it is rebuilt from the log.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate
from pycrdt import Doc

from auth.access import Role, require_request_document
from collab.api.history_params import require_seq
from collab.realtime.keys import ROOMS
from eventstore.crdt import encode_state, text_of
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.replay import rebuild
from webcore.validation import query

routes = web.RouteTableDef()


class AtQuerySchema(Schema):
    """Which version: right after event ``at`` (default: the head)."""

    at = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "Rebuild right after this event seq; omit for the head."},
    )


class ContentSchema(Schema):
    """A document's text at one seq."""

    doc_id = fields.String()
    seq = fields.Integer(metadata={"description": "The newest event the text includes."})
    text = fields.String(metadata={"example": "print('hello')\n"})


async def document_at(request: web.Request, doc_id: str, at: int | None) -> tuple[int, Doc[Any]]:
    """The seq and document at ``at`` (the head when None).

    Raises:
        ValidationError: ``at`` is past the head (the error names the valid range).
    """
    if at is not None:
        await require_seq(EventLog(request.app[DATABASE]), doc_id, at, "at")
    room = request.app[ROOMS].get(doc_id)
    if at is None and room is not None and not room.closed:
        await room.flush()
        if not room.closed:
            return room.seq, room.doc
    rebuilt = await rebuild(EventLog(request.app[DATABASE]), doc_id, at=at)
    return rebuilt.seq, rebuilt.doc


@routes.get("/api/documents/{doc_id}/content")
@docs(
    tags=["content"],
    summary="The document's text",
    description="At the head, or right after event `at`. Viewer or better.",
    responses={404: {"description": "Unknown document, or not a member"}},
)
@request_schema(AtQuerySchema, location="querystring")
@response_schema(ContentSchema, 200)
async def get_content(request: web.Request) -> web.Response:
    """``GET /api/documents/{doc_id}/content[?at=SEQ]``."""
    access = await require_request_document(request, Role.VIEWER)
    seq, doc = await document_at(request, access.doc_id, query(request).get("at"))
    return web.json_response({"doc_id": access.doc_id, "seq": seq, "text": text_of(doc)})


@routes.get("/api/documents/{doc_id}/state")
@docs(
    tags=["content"],
    summary="The document's Yjs state",
    description=(
        "One Yjs update (`application/octet-stream`) encoding the whole state, for"
        " `Y.applyUpdate`. The `X-Collab-Seq` header names the newest event included."
    ),
    responses={
        200: {
            "description": "The encoded state",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        404: {"description": "Unknown document, or not a member"},
    },
)
@request_schema(AtQuerySchema, location="querystring")
async def get_state(request: web.Request) -> web.Response:
    """``GET /api/documents/{doc_id}/state[?at=SEQ]``."""
    access = await require_request_document(request, Role.VIEWER)
    seq, doc = await document_at(request, access.doc_id, query(request).get("at"))
    return web.Response(
        body=encode_state(doc),
        content_type="application/octet-stream",
        headers={"X-Collab-Seq": str(seq)},
    )
