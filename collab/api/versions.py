"""New versions made from old ones: restore a document, or fork it."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate

from auth.access import Role, current_user, require_request_document
from collab.api.document_schemas import NAME_MAX, DocumentSchema, document_json
from collab.api.documents import document_row, insert_document
from collab.api.history_params import require_seq, source_field
from collab.keys import SETTINGS
from collab.realtime.keys import ROOMS
from eventstore.crdt import encode_state, text_of
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.keys import DATABASE
from eventstore.replay import rebuild
from webcore.fields import Text
from webcore.validation import body

routes = web.RouteTableDef()
TAGS = ["history"]


class RestoreSchema(Schema):
    """Which version to bring back."""

    seq = fields.Integer(required=True, validate=validate.Range(min=0), metadata={"example": 12})
    source = source_field()


class RestoredSchema(Schema):
    """The seq of the new ``restore`` event (the new head)."""

    seq = fields.Integer()


class ForkSchema(Schema):
    """The new document's name and the version to start from (default: the head)."""

    name = Text(required=True, validate=validate.Length(1, NAME_MAX))
    seq = fields.Integer(validate=validate.Range(min=0))


@routes.post("/api/documents/{doc_id}/restore")
@docs(
    tags=TAGS,
    summary="Make the text equal to an earlier version",
    description="Editor or better. Appends one `restore` event; history is never rewritten"
    " and connected clients see the change live.",
)
@request_schema(RestoreSchema)
@response_schema(RestoredSchema, 200)
async def restore(request: web.Request) -> web.Response:
    """``POST /api/documents/{doc_id}/restore`` ``{seq}``."""
    access = await require_request_document(request, Role.EDITOR)
    data = body(request)
    seq = data["seq"]
    log = EventLog(request.app[DATABASE])
    await _require_known_seq(log, access.doc_id, seq)
    target = text_of((await rebuild(log, access.doc_id, at=seq)).doc)
    async with request.app[ROOMS].borrow(access.doc_id, access.project_id) as room:
        new_seq = await room.restore(target, current_user(request).id, data.get("source"))
    return web.json_response({"seq": new_seq})


@routes.post("/api/documents/{doc_id}/fork")
@docs(
    tags=TAGS,
    summary="Copy a document (at a version) into a new one",
    description="Editor or better. The new document's log starts with one `fork` event"
    " holding the state at `seq` and naming its source.",
)
@request_schema(ForkSchema)
@response_schema(DocumentSchema, 201)
async def fork(request: web.Request) -> web.Response:
    """``POST /api/documents/{doc_id}/fork`` ``{name, seq?}``."""
    access = await require_request_document(request, Role.EDITOR)
    data = body(request)
    db = request.app[DATABASE]
    log = EventLog(db)
    await _require_known_seq(log, access.doc_id, data.get("seq"))
    source = await rebuild(log, access.doc_id, at=data.get("seq"))
    source_row = await document_row(db, access.doc_id)
    event = NewEvent(
        "fork",
        encode_state(source.doc),
        current_user(request).id,
        request.app[SETTINGS].node_id,
        {"source_doc_id": access.doc_id, "source_seq": source.seq},
    )
    async with db.transaction() as conn:
        doc_id = await insert_document(
            conn, access.project_id, data["name"], source_row["language"]
        )
        await log.append(doc_id, [event], conn=conn)
        row = await document_row(conn, doc_id)
    return web.json_response(document_json(row), status=201)


async def _require_known_seq(log: EventLog, doc_id: str, seq: int | None) -> None:
    await require_seq(log, doc_id, seq, "seq")
