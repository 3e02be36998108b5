"""Looking back: the event history of a document and who wrote what."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate

from auth.access import Role, require_request_document
from collab.api.history_params import display_names
from eventstore.blame import blame
from eventstore.eventlog import EventLog
from eventstore.events import EVENT_KINDS
from eventstore.keys import DATABASE
from webcore.fields import bounded_integer, iso_time
from webcore.validation import query

routes = web.RouteTableDef()
TAGS = ["history"]
MAX_LIMIT = 1000
MAX_SEQ = 2**62  # both engines store seqs as 64-bit integers


class HistoryQuerySchema(Schema):
    """Paging through the log, oldest first."""

    after = bounded_integer(load_default=0)
    limit = bounded_integer(load_default=100, minimum=1, maximum=MAX_LIMIT)


class HistoryItemSchema(Schema):
    """One event of the log (without its update bytes)."""

    seq = fields.Integer(metadata={"example": 7})
    kind = fields.String(validate=validate.OneOf(EVENT_KINDS), metadata={"example": "update"})
    author_id = fields.String(allow_none=True)
    author_name = fields.String(allow_none=True)
    node_id = fields.String()
    created_at = fields.DateTime()
    size = fields.Integer(metadata={"description": "Bytes of the Yjs update."})
    source = fields.String(
        allow_none=True,
        metadata={
            "description": "The tool or agent that made it, if declared.",
            "example": "ai:assistant",
        },
    )
    meta = fields.Dict(
        allow_none=True,
        metadata={
            "description": "Facts stored with the event, e.g. a fork's source_doc_id.",
            "example": {"source_doc_id": "5b0e9c3d2f6a4e1b8c7d9e0f1a2b3c4d", "source_seq": 12},
        },
    )


class HistorySchema(Schema):
    """A page of history; ``next_after`` is null on the last page."""

    items = fields.List(fields.Nested(HistoryItemSchema))
    next_after = fields.Integer(allow_none=True)


class BlameSpanSchema(Schema):
    """Characters ``[start, end)`` (UTF-16 code units) inserted by event ``seq``."""

    start = fields.Integer()
    end = fields.Integer()
    author_id = fields.String(allow_none=True)
    author_name = fields.String(allow_none=True)
    seq = fields.Integer()
    source = fields.String(allow_none=True)


class BlameSchema(Schema):
    """Authorship of every character of the current text."""

    seq = fields.Integer()
    text = fields.String()
    spans = fields.List(fields.Nested(BlameSpanSchema))


@routes.get("/api/documents/{doc_id}/history")
@docs(tags=TAGS, summary="The document's events, oldest first", description="Viewer or better.")
@request_schema(HistoryQuerySchema, location="querystring")
@response_schema(HistorySchema, 200)
async def get_history(request: web.Request) -> web.Response:
    """``GET /api/documents/{doc_id}/history?after=SEQ&limit=N``."""
    access = await require_request_document(request, Role.VIEWER)
    page = query(request)
    db = request.app[DATABASE]
    events = await EventLog(db).read(access.doc_id, after=page["after"], limit=page["limit"])
    names = await display_names(db, {event.author_id for event in events})
    items = [
        {
            "seq": event.seq,
            "kind": event.kind,
            "author_id": event.author_id,
            "author_name": names.get(event.author_id),
            "node_id": event.node_id,
            "created_at": iso_time(event.created_at),
            "size": len(event.update),
            "source": event.source,
            "meta": event.meta,
        }
        for event in events
    ]
    next_after = items[-1]["seq"] if len(items) == page["limit"] else None
    return web.json_response({"items": items, "next_after": next_after})


@routes.get("/api/documents/{doc_id}/blame")
@docs(
    tags=TAGS,
    summary="Who inserted each character",
    description="Viewer or better. Replays the whole log; spans are in UTF-16 code units.",
)
@response_schema(BlameSchema, 200)
async def get_blame(request: web.Request) -> web.Response:
    """``GET /api/documents/{doc_id}/blame``."""
    access = await require_request_document(request, Role.VIEWER)
    db = request.app[DATABASE]
    result = await blame(EventLog(db), access.doc_id)
    names = await display_names(db, {span.author_id for span in result.spans})
    spans = [
        {
            "start": span.start,
            "end": span.end,
            "author_id": span.author_id,
            "author_name": names.get(span.author_id),
            "seq": span.seq,
            "source": span.source,
        }
        for span in result.spans
    ]
    return web.json_response({"seq": result.seq, "text": result.text, "spans": spans})
