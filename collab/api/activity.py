"""Editing sessions: runs of events close together in time, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema
from marshmallow import Schema, fields, validate

from auth.access import Role, require_request_document
from collab.api.history_cache import HISTORY_CACHE
from collab.api.history_params import aware_time, display_names, require_seq
from eventstore.changes import EventInfo
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from webcore.errors import ValidationError
from webcore.fields import iso_time
from webcore.validation import query

routes = web.RouteTableDef()
TAGS = ["history"]
MAX_LIMIT = 1000
MAX_GAP_MS = 7 * 24 * 3600 * 1000
MAX_AUTHORS = 50
_EXAMPLE = {
    "from_seq": 12,
    "to_seq": 40,
    "from_time": "2025-01-31T09:30:00.000000Z",
    "to_time": "2025-01-31T09:31:12.500000Z",
    "authors": [{"id": "3f2a…", "display_name": "Ada"}],
    "sources": ["ai:assistant"],
    "inserted": 120,
    "deleted": 7,
}


class ActivityQuerySchema(Schema):
    """Which events to group, and how far apart sessions are."""

    after_seq = fields.Integer(validate=validate.Range(min=0))
    through_seq = fields.Integer(validate=validate.Range(min=0))
    by = fields.String(
        metadata={"description": "Comma-separated user ids: only their events count."}
    )
    gap_ms = fields.Integer(load_default=1000, validate=validate.Range(min=0, max=MAX_GAP_MS))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))
    from_ = aware_time(data_key="from")
    to = aware_time()


class AuthorSchema(Schema):
    """A user who wrote part of a session."""

    id = fields.String(allow_none=True)
    display_name = fields.String(allow_none=True)


class SessionSchema(Schema):
    """One editing session; counts are UTF-16 characters."""

    from_seq = fields.Integer()
    to_seq = fields.Integer()
    from_time = fields.DateTime()
    to_time = fields.DateTime()
    authors = fields.List(fields.Nested(AuthorSchema))
    sources = fields.List(fields.String())
    inserted = fields.Integer()
    deleted = fields.Integer()


class ActivitySchema(Schema):
    """Sessions, newest first."""

    items = fields.List(fields.Nested(SessionSchema), metadata={"example": [_EXAMPLE]})


@dataclass(slots=True)
class Session:
    """Consecutive events no more than the gap apart."""

    events: list[EventInfo] = field(default_factory=list)

    def json(self, names: dict[str | None, Any]) -> dict[str, Any]:
        """The API shape of the session."""
        authors = list(dict.fromkeys(e.author_id for e in self.events))
        sources = list(dict.fromkeys(e.source for e in self.events if e.source is not None))
        return {
            "from_seq": self.events[0].seq,
            "to_seq": self.events[-1].seq,
            "from_time": iso_time(self.events[0].created_at),
            "to_time": iso_time(self.events[-1].created_at),
            "authors": [{"id": a, "display_name": names.get(a)} for a in authors],
            "sources": sources,
            "inserted": sum(e.inserted for e in self.events),
            "deleted": sum(e.deleted for e in self.events),
        }


def sessions(events: list[EventInfo], gap_seconds: float) -> list[Session]:
    """Group events (oldest first) into sessions, returned newest first.

    A session ends where the next event comes ``gap_seconds`` or more later.
    """
    found: list[Session] = []
    for event in events:
        if not found or event.created_at - found[-1].events[-1].created_at >= gap_seconds:
            found.append(Session())
        found[-1].events.append(event)
    found.reverse()
    return found


def _selected(events: list[EventInfo], params: dict[str, Any]) -> list[EventInfo]:
    authors = _authors(params.get("by"))
    start = params["from_"].timestamp() if "from_" in params else None
    end = params["to"].timestamp() if "to" in params else None
    return [
        e
        for e in events
        if e.seq > params.get("after_seq", 0)
        and (authors is None or e.author_id in authors)
        and (start is None or e.created_at >= start)
        and (end is None or e.created_at <= end)
    ]


def _authors(by: str | None) -> set[str] | None:
    if by is None:
        return None
    ids = {part.strip() for part in by.split(",") if part.strip()}
    if not ids or len(ids) > MAX_AUTHORS:
        message = f"by must name 1 to {MAX_AUTHORS} user ids"
        raise ValidationError(message, details={"by": [message]})
    return ids


@routes.get("/api/documents/{doc_id}/activity")
@docs(
    tags=TAGS,
    summary="Editing sessions, newest first",
    description="Viewer or better. A session is a run of consecutive events less than"
    " `gap_ms` apart; with `by`, only those users' events count. `inserted`/`deleted`"
    " count UTF-16 characters.",
)
@request_schema(ActivityQuerySchema, location="querystring")
@response_schema(ActivitySchema, 200, description="Sessions, newest first.")
async def get_activity(request: web.Request) -> web.Response:
    """``GET /api/documents/{doc_id}/activity``."""
    access = await require_request_document(request, Role.VIEWER)
    params = query(request)
    db = request.app[DATABASE]
    log = EventLog(db)
    head = await require_seq(log, access.doc_id, params.get("after_seq"), "after_seq")
    through = params.get("through_seq")
    await require_seq(log, access.doc_id, through, "through_seq")
    last = head if through is None else through
    history = await request.app[HISTORY_CACHE].get(log, access.doc_id, last)
    events = _selected([e for e in history.events.values() if e.seq <= last], params)
    found = sessions(events, params["gap_ms"] / 1000)[: params["limit"]]
    names = await display_names(db, {e.author_id for s in found for e in s.events})
    return web.json_response({"items": [session.json(names) for session in found]})
