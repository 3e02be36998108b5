"""The change feed: every committed event of a document as Server-Sent Events.

``GET /api/documents/{doc_id}/changes?after=SEQ`` streams the events after
``SEQ`` (``id`` = seq), then new ones as they are committed on any node.
Reconnecting clients resume with ``Last-Event-ID``. The feed reads the log,
so it never shows anything uncommitted and never misses an event; rooms only
wake it up early (``collab.realtime.signals.ChangeSignals``), and it polls the log otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import json

from aiohttp import web
from aiohttp_apigami import docs, request_schema
from marshmallow import Schema

from auth.access import Role, require_request_document
from collab.realtime.keys import CHANGE_SIGNALS
from eventstore.eventlog import EventLog
from eventstore.events import StoredEvent
from eventstore.keys import DATABASE
from webcore.fields import bounded_integer, iso_time, parse_bounded_int
from webcore.validation import query

routes = web.RouteTableDef()
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
PAGE = 500


class ChangesQuerySchema(Schema):
    """Where to start: the events after ``after``."""

    after = bounded_integer(load_default=0)


@routes.get("/api/documents/{doc_id}/changes")
@docs(
    tags=["history"],
    summary="Live feed of committed events (Server-Sent Events)",
    description="Viewer or better. `text/event-stream`: one message per event, `id` = seq,"
    " data `{seq, kind, author_id, node_id, created_at, update_b64}`; resumable with"
    " `Last-Event-ID`. For indexers, webhooks and mirrors.",
    responses={
        200: {
            "description": "The event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
@request_schema(ChangesQuerySchema, location="querystring")
async def changes(request: web.Request) -> web.StreamResponse:
    """``GET /api/documents/{doc_id}/changes?after=SEQ``."""
    access = await require_request_document(request, Role.VIEWER)
    after = max(query(request)["after"], _last_event_id(request))
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    log = EventLog(request.app[DATABASE])
    signals = request.app[CHANGE_SIGNALS]
    idle = 0.0
    with contextlib.suppress(ConnectionError):
        while not signals.closed:
            events = await log.read(access.doc_id, after=after, limit=PAGE)
            for event in events:
                await response.write(_message(event))
                after = event.seq
            if len(events) == PAGE:
                continue
            idle = 0.0 if events else idle + POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                await response.write(b": keep-alive\n\n")
                idle = 0.0
            await signals.wait(access.doc_id, POLL_SECONDS)
    return response


async def close_feeds(app: web.Application) -> None:
    """``on_shutdown``: end every open feed (clients resume with Last-Event-ID)."""
    app[CHANGE_SIGNALS].close()


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID", "")
    return parse_bounded_int(raw)


def _message(event: StoredEvent) -> bytes:
    data = {
        "seq": event.seq,
        "kind": event.kind,
        "author_id": event.author_id,
        "node_id": event.node_id,
        "created_at": iso_time(event.created_at),
        "update_b64": base64.b64encode(event.update).decode("ascii"),
    }
    return f"id: {event.seq}\ndata: {json.dumps(data)}\n\n".encode()
