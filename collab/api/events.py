"""``GET /api/events``: the caller's live lists as Server-Sent Events.

One stream per browser tab carries every change of every project the
caller belongs to: ``project.created|updated|deleted``,
``member.added|updated|removed``, ``document.created|updated|deleted|undeleted``
and ``job.started|finished``. Each message has ``event:`` = the type,
``id:`` = an increasing id and ``data:`` = the object as JSON (always with
``project_id``). A reconnecting ``EventSource`` sends ``Last-Event-ID`` and
gets what it missed if this node still has it (the last 1000 events of the
last 5 minutes); otherwise the first message is ``event: resync``, meaning
"reload your lists". Quiet streams get a comment every 15 seconds; all
streams end when the node shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from aiohttp_apigami import docs

from auth.access import current_user
from collab.live.bus import LiveEvent, LiveStream
from collab.live.keys import LIVE_BUS
from eventstore.keys import DATABASE

routes = web.RouteTableDef()
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
_MY_PROJECTS = "SELECT project_id FROM project_members WHERE user_id = $1"
_RESYNC = b"event: resync\ndata: {}\n\n"


@routes.get("/api/events")
@docs(
    tags=["events"],
    summary="Live changes of the caller's projects (Server-Sent Events)",
    description="`text/event-stream`. Events: `project.created|updated|deleted`,"
    " `member.added|updated|removed`, `document.created|updated|deleted|undeleted`,"
    " `job.started|finished`; `data` is the object as JSON with its `project_id`. Resume"
    " with `Last-Event-ID` (recent events only; else the first event is `resync`: reload"
    " the lists). A comment every 15 s keeps quiet streams open. Works with the session"
    " cookie, so a browser `EventSource` needs no header.",
    responses={
        200: {
            "description": "The event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def events(request: web.Request) -> web.StreamResponse:
    """Stream the caller's live events until the client leaves or the node stops."""
    user = current_user(request)
    bus = request.app[LIVE_BUS]
    # Subscribe before reading the memberships: a join committed in between
    # is then seen by one or the other.
    with bus.subscribe(user.id, ()) as stream:
        rows = await request.app[DATABASE].fetch(_MY_PROJECTS, user.id)
        stream.projects.update(row["project_id"] for row in rows)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # proxies must not hold events back
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(f"retry: {RETRY_MS}\n: connected\n\n".encode())
            await _replay(request, response, stream)
            await _pump(response, stream)
    return response


async def _replay(request: web.Request, response: web.StreamResponse, stream: LiveStream) -> None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not raw:
        return
    missed = request.app[LIVE_BUS].since(int(raw)) if raw.isdigit() and len(raw) < 20 else None
    if missed is None:
        await response.write(_RESYNC)
        return
    live: list[LiveEvent] = []
    while not stream.queue.empty():  # already queued: sent once, after the replay
        item = stream.queue.get_nowait()
        if item is None:
            stream.end()
            break
        live.append(item)
    replay = LiveStream(stream.user_id, set(stream.projects))
    for event in missed:
        replay.offer(event)
    seen = {event.id for event in live}
    while not replay.queue.empty():
        missed_event = replay.queue.get_nowait()
        if missed_event is not None and missed_event.id not in seen:
            await response.write(missed_event.sse())
    for event in live:
        await response.write(event.sse())


async def _pump(response: web.StreamResponse, stream: LiveStream) -> None:
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE_SECONDS):
                event = await stream.queue.get()
        except TimeoutError:
            await response.write(b": keep-alive\n\n")
            continue
        if event is None:
            return
        await response.write(event.sse())
