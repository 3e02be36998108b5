"""Rolling back chosen events: one ``rollback`` event that undoes exactly their effect."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError
from pycrdt import Doc

from auth.access import Role, current_user, require_request_document
from collab.api.history_cache import HISTORY_CACHE
from collab.api.history_params import aware_time, require_seq, source_field
from collab.api.server_edits import commit_update, update_from
from collab.realtime.room import ServerEdit
from eventstore.changes import CharHistory, EventInfo
from eventstore.crdt import apply_update, encode_state, new_doc
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.rollback import rollback_plan
from eventstore.splices import apply_from_end
from webcore.errors import ValidationError
from webcore.fields import Text
from webcore.validation import body

routes = web.RouteTableDef()
MAX_AUTHORS = 50
_FILTERS = ("by", "source", "after_seq", "through_seq", "from_", "to")


class RollbackSchema(Schema):
    """Which events to undo: all the given filters must hold (at least one)."""

    by = fields.List(
        Text(validate=validate.Length(1, 200)),
        validate=validate.Length(1, MAX_AUTHORS),
        metadata={"description": "Only these users' events."},
    )
    source = source_field()
    after_seq = fields.Integer(validate=validate.Range(min=0))
    through_seq = fields.Integer(validate=validate.Range(min=0))
    from_ = aware_time(data_key="from")
    to = aware_time()

    @validates_schema
    def _needs_a_filter(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not any(name in data for name in _FILTERS):
            raise SchemaError(
                "give at least one of by, source, after_seq, through_seq, from, to",
                field_name="_schema",
            )


class RolledBackSchema(Schema):
    """The new ``rollback`` event and how many events it undid."""

    seq = fields.Integer(metadata={"example": 42})
    undone_events = fields.Integer(metadata={"example": 17})


def matches(event: EventInfo, filters: dict[str, Any]) -> bool:
    """Whether ``event`` passes every filter of a rollback request."""
    return (
        ("by" not in filters or event.author_id in filters["by"])
        and ("source" not in filters or event.source == filters["source"])
        and event.seq > filters.get("after_seq", 0)
        and ("through_seq" not in filters or event.seq <= filters["through_seq"])
        and ("from_" not in filters or event.created_at >= filters["from_"].timestamp())
        and ("to" not in filters or event.created_at <= filters["to"].timestamp())
    )


def copy_of(history: CharHistory) -> Doc[Any]:
    """A private copy of the history's document (the cached one must stay as it is)."""
    doc = new_doc()
    if history.doc is not None:
        apply_update(doc, encode_state(history.doc))
    return doc


@routes.post("/api/documents/{doc_id}/rollback")
@docs(
    tags=["history"],
    summary="Undo chosen events, keeping every other edit",
    description="Editor or better. Appends ONE `rollback` event that removes what the"
    " matching events inserted and restores what they deleted; edits by others, earlier"
    " or later, stay. Connected clients see it live. 422 when nothing matches.",
)
@request_schema(RollbackSchema, required=True)
@response_schema(RolledBackSchema, 200, description="The rollback event.")
async def rollback(request: web.Request) -> web.Response:
    """``POST /api/documents/{doc_id}/rollback``."""
    access = await require_request_document(request, Role.EDITOR)
    filters = body(request)
    log = EventLog(request.app[DATABASE])
    head = await require_seq(log, access.doc_id, filters.get("after_seq"), "after_seq")
    await require_seq(log, access.doc_id, filters.get("through_seq"), "through_seq")
    history = await request.app[HISTORY_CACHE].get(log, access.doc_id, head)
    # Everything up to the next await reads one consistent history (see HistoryCache).
    chosen = {seq for seq, info in history.events.items() if matches(info, filters)}
    if not chosen:
        raise ValidationError("no events match the filters", details={"_schema": ["no match"]})
    plan = rollback_plan(history, chosen)
    doc = copy_of(history)
    update = update_from(doc, lambda d: apply_from_end(d, plan))
    edit = ServerEdit(
        "rollback",
        current_user(request).id,
        meta={"undone_events": len(chosen), "first": min(chosen), "last": max(chosen)},
    )
    seq = await commit_update(request, access, edit, update)
    return web.json_response({"seq": seq, "undone_events": len(chosen)})
