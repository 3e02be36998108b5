"""Writing over REST: text splices, or raw Yjs updates, committed as the caller."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate

from auth.access import Role, current_user, require_request_document
from collab.api.history_params import SOURCE_RULE, require_seq, source_field
from collab.api.server_edits import commit_update, update_from
from collab.keys import SETTINGS
from collab.realtime.protocol import ProtocolError
from collab.realtime.room import ServerEdit
from collab.realtime.update_check import check_update
from eventstore.crdt import text_of
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.replay import rebuild
from eventstore.splices import SpliceError, TextEdit, apply_in_order, to_splices
from webcore.errors import BadRequestError, PayloadTooLargeError, ValidationError
from webcore.fields import Text
from webcore.validation import body, query

routes = web.RouteTableDef()
MAX_EDITS = 1000
MAX_POSITION = 2**31


class EditSchema(Schema):
    """At UTF-16 ``index``: delete ``delete`` units, then insert ``insert``."""

    index = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_POSITION))
    delete = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_POSITION))
    insert = Text(load_default="", strip=False, allow_control=True)


class EditsSchema(Schema):
    """Splices applied in order, each against the text the previous one left."""

    edits = fields.List(
        fields.Nested(EditSchema),
        required=True,
        validate=validate.Length(1, MAX_EDITS),
        metadata={"example": [{"index": 0, "delete": 0, "insert": "# hello\n"}]},
    )
    base_seq = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "Positions refer to the text at this seq (default: now)."},
    )
    source = source_field()


class SeqSchema(Schema):
    """The new event's seq; null when the request changed nothing."""

    seq = fields.Integer(allow_none=True, metadata={"example": 43})


class UpdateQuerySchema(Schema):
    """The tool or agent sending the update."""

    source = source_field()


@routes.post("/api/documents/{doc_id}/edits")
@docs(
    tags=["content"],
    summary="Apply text splices as the caller",
    description="Editor or better. Positions are UTF-16 units. With `base_seq` they refer"
    " to the text at that seq and the CRDT merges them with everything after it. One"
    " `edit` event, live to every client; `seq` is null when nothing changed.",
)
@request_schema(EditsSchema, required=True)
@response_schema(SeqSchema, 200, description="The edit event.")
async def post_edits(request: web.Request) -> web.Response:
    """``POST /api/documents/{doc_id}/edits`` ``{edits, base_seq?, source?}``."""
    access = await require_request_document(request, Role.EDITOR)
    data = body(request)
    edits = [TextEdit(e["index"], e["delete"], e["insert"]) for e in data["edits"]]
    log = EventLog(request.app[DATABASE])
    base = data.get("base_seq")
    if base is None:
        base = await require_seq(log, access.doc_id, None, "base_seq")
    else:
        await require_seq(log, access.doc_id, base, "base_seq")
    doc = (await rebuild(log, access.doc_id, at=base)).doc
    try:
        splices = to_splices(text_of(doc), edits)
    except SpliceError as exc:
        raise ValidationError(str(exc), details={"edits": [str(exc)]}) from None
    update = update_from(doc, lambda d: apply_in_order(d, splices))
    edit = ServerEdit(
        "edit", current_user(request).id, data.get("source"), {"base_seq": base}, always=False
    )
    return web.json_response({"seq": await commit_update(request, access, edit, update)})


@routes.post("/api/documents/{doc_id}/updates")
@docs(
    tags=["content"],
    summary="Apply a raw Yjs update as the caller",
    description="Editor or better. The body is one Yjs v1 update"
    " (`application/octet-stream`), checked like a WebSocket client's. `seq` is null"
    f" when it changes nothing. `?source=` labels the event ({SOURCE_RULE}).",
    requestBody={
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
)
@request_schema(UpdateQuerySchema, location="querystring")
@response_schema(SeqSchema, 200, description="The update event.")
async def post_update(request: web.Request) -> web.Response:
    """``POST /api/documents/{doc_id}/updates[?source=LABEL]`` with a raw Yjs update."""
    access = await require_request_document(request, Role.EDITOR)
    source = query(request).get("source")
    if request.content_type != "application/octet-stream":
        raise BadRequestError("send the update as application/octet-stream")
    limit = request.app[SETTINGS].max_message_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the update is larger than {limit} bytes")
    update = await request.read()
    if not update:
        raise ValidationError("the update is empty", details={"update": ["empty"]})
    try:
        check_update(update)
    except ProtocolError as exc:
        raise ValidationError("not a valid Yjs update", details={"update": [str(exc)]}) from None
    edit = ServerEdit("update", current_user(request).id, source, always=False)
    return web.json_response({"seq": await commit_update(request, access, edit, update)})
