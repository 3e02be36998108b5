"""What changed between two versions, attributed run by run."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate

from auth.access import Role, require_request_document
from collab.api.history_cache import HISTORY_CACHE
from collab.api.history_params import (
    attribution,
    aware_time,
    display_names,
    require_seq,
    seq_at,
)
from eventstore.changeset import RunOp, changeset
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from webcore.errors import ValidationError
from webcore.validation import query

routes = web.RouteTableDef()
_OPS: tuple[RunOp, ...] = ("keep", "insert", "delete")


class ChangesetQuerySchema(Schema):
    """The two versions: each by seq or by time (default: 0 and the head)."""

    from_seq = fields.Integer(validate=validate.Range(min=0))
    to_seq = fields.Integer(validate=validate.Range(min=0))
    from_ = aware_time(data_key="from")
    to = aware_time()


class RunSchema(Schema):
    """Text kept, inserted or deleted; changes name the event that made them."""

    op = fields.String(validate=validate.OneOf(_OPS))
    text = fields.String()
    author_id = fields.String(allow_none=True)
    author_name = fields.String(allow_none=True)
    seq = fields.Integer()
    source = fields.String(allow_none=True)


class ChangesetSchema(Schema):
    """keep+insert runs give the text at ``to_seq``; keep+delete the text at ``from_seq``."""

    from_seq = fields.Integer()
    to_seq = fields.Integer()
    runs = fields.List(
        fields.Nested(RunSchema),
        metadata={
            "example": [
                {"op": "keep", "text": "print("},
                {
                    "op": "insert",
                    "text": "'hi'",
                    "author_id": "3f2a…",
                    "author_name": "Ada",
                    "seq": 7,
                    "source": None,
                },
                {"op": "keep", "text": ")\n"},
            ]
        },
    )


async def _end(log: EventLog, doc_id: str, params: dict[str, Any], end: str, default: int) -> int:
    seq_name, time_name = f"{end}_seq", f"{end}_" if end == "from" else end
    if seq_name in params and time_name in params:
        message = f"give {seq_name} or {end}, not both"
        raise ValidationError(message, details={seq_name: [message]})
    if time_name in params:
        return await seq_at(log, doc_id, params[time_name])
    seq: int = params.get(seq_name, default)
    await require_seq(log, doc_id, seq, seq_name)
    return seq


@routes.get("/api/documents/{doc_id}/changeset")
@docs(
    tags=["history"],
    summary="The text at one version with what changed since another",
    description="Viewer or better. Each end is a seq (`from_seq`, `to_seq`) or an ISO time"
    " (`from`, `to`: the newest event at or before it); defaults 0 and the head. Every"
    " insert and delete run names the author, seq and source of the event that made it.",
)
@request_schema(ChangesetQuerySchema, location="querystring")
@response_schema(ChangesetSchema, 200, description="The runs from one version to the other.")
async def get_changeset(request: web.Request) -> web.Response:
    """``GET /api/documents/{doc_id}/changeset?from_seq=A&to_seq=B``."""
    access = await require_request_document(request, Role.VIEWER)
    params = query(request)
    db = request.app[DATABASE]
    log = EventLog(db)
    head = (await log.head(access.doc_id)).seq
    from_seq = await _end(log, access.doc_id, params, "from", 0)
    to_seq = await _end(log, access.doc_id, params, "to", head)
    history = await request.app[HISTORY_CACHE].get(log, access.doc_id, max(from_seq, to_seq))
    runs = changeset(history, from_seq, to_seq)
    infos = {run.seq: history.events.get(run.seq) for run in runs if run.seq is not None}
    names = await display_names(db, {i.author_id for i in infos.values() if i is not None})
    body = [
        {"op": run.op, "text": run.text}
        | (attribution(infos.get(run.seq), names) if run.seq is not None else {})
        for run in runs
    ]
    return web.json_response({"from_seq": from_seq, "to_seq": to_seq, "runs": body})
