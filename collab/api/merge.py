"""Merging a fork back (or its source's news into a fork) as one ``merge`` event.

A fork's log starts with its source's state, so both documents share the Yjs
items from before the fork; what one side made since is the difference of its
state now against its state at the fork (or at the last merge), and applying
that difference to the other side merges concurrent edits without conflict.
Each merge event records how far into the other log it reached, so the next
merge brings only what is newer.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate

from auth.access import Role, current_user, require_document_role, require_request_document
from collab.api.history_params import source_field
from collab.api.server_edits import commit_update
from collab.realtime.room import ServerEdit
from eventstore.crdt import guarded
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.replay import rebuild
from webcore.errors import ValidationError
from webcore.fields import Text
from webcore.validation import body

routes = web.RouteTableDef()


class MergeSchema(Schema):
    """The document whose changes to bring in: a fork of this one, or its source."""

    from_document_id = Text(
        required=True,
        validate=validate.Length(1, 200),
        metadata={"example": "5b0e9c3d2f6a4e1b8c7d9e0f1a2b3c4d"},
    )
    source = source_field()


class MergedSchema(Schema):
    """The new ``merge`` event (null when there was nothing new) and how many events it carried."""

    seq = fields.Integer(allow_none=True, metadata={"example": 57})
    merged_events = fields.Integer(metadata={"example": 12})


async def fork_point(log: EventLog, doc_id: str, other_id: str) -> int:
    """The seq of ``other_id``'s log that both documents share.

    Raises:
        ValidationError: neither document is a fork of the other.
    """
    for fork_id, source_id in ((other_id, doc_id), (doc_id, other_id)):
        first = await log.event(fork_id, 1)
        if first is None or first.kind != "fork" or first.meta is None:
            continue
        if first.meta.get("source_doc_id") == source_id:
            # Other is our fork: it shares its seq 1; we fork it: it shares source_seq.
            return 1 if fork_id == other_id else int(first.meta.get("source_seq", 0))
    message = "the documents are not forks of one another"
    raise ValidationError(message, details={"from_document_id": [message]})


async def last_merge_point(log: EventLog, doc_id: str, other_id: str) -> int | None:
    """How far into ``other_id``'s log the newest merge into ``doc_id`` reached."""
    for event in reversed(await log.events_of_kind(doc_id, "merge")):
        meta = event.meta or {}
        if meta.get("from_document_id") == other_id:
            return int(meta["through_seq"])
    return None


@routes.post("/api/documents/{doc_id}/merge")
@docs(
    tags=["history"],
    summary="Bring in a fork's (or the source's) changes",
    description="Editor or better on both documents; one must be a fork of the other"
    " (else 422). Appends ONE `merge` event with the other document's changes since the"
    " fork or the last merge; concurrent edits on both sides merge without conflict."
    " Connected clients see it live.",
)
@request_schema(MergeSchema, required=True)
@response_schema(MergedSchema, 200, description="The merge event.")
async def merge(request: web.Request) -> web.Response:
    """``POST /api/documents/{doc_id}/merge`` ``{from_document_id}``."""
    access = await require_request_document(request, Role.EDITOR)
    data = body(request)
    other_id = data["from_document_id"]
    db = request.app[DATABASE]
    user = current_user(request)
    await require_document_role(db, other_id, user.id, Role.EDITOR)
    if other_id == access.doc_id:
        raise ValidationError("a document cannot merge itself", details={"from_document_id": []})
    log = EventLog(db)
    since = await last_merge_point(log, access.doc_id, other_id)
    if since is None:
        since = await fork_point(log, access.doc_id, other_id)
    other = await rebuild(log, other_id)
    if other.seq <= since:
        return web.json_response({"seq": None, "merged_events": 0})
    base = await rebuild(log, other_id, at=since)
    update = guarded(lambda: other.doc.get_update(base.doc.get_state()))
    meta = {"from_document_id": other_id, "through_seq": other.seq, "since_seq": since}
    edit = ServerEdit("merge", user.id, data.get("source"), meta)
    seq = await commit_update(request, access, edit, update)
    return web.json_response({"seq": seq, "merged_events": other.seq - since})
