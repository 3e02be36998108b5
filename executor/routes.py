"""``/api/jobs``: submit, read, list, follow live and cancel code-execution jobs.

Jobs belong to a project: any member may read them, editors and the owner
may submit and cancel; to anyone else they do not exist (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, request_schema, response_schema

from auth.access import (
    NotVisibleError,
    Role,
    current_user,
    require_document_role,
    require_project_role,
)
from eventstore import Database
from eventstore.keys import DATABASE
from eventstore.replay import document_text
from executor.errors import JobRejectedError, JobTooLargeError
from executor.keys import JOB_ANNOUNCER, JOBS, STREAMS_CLOSING
from executor.models import Job, NewJob
from executor.sandbox.languages import LANGUAGES
from executor.schemas import (
    MAX_SOURCE_BYTES,
    MAX_STDIN_BYTES,
    JobListQuerySchema,
    JobListSchema,
    JobSchema,
    JobSubmitSchema,
)
from executor.stream import job_events
from webcore.openapi_errors import error_responses
from webcore.validation import body

routes = web.RouteTableDef()
TAGS = ["jobs"]
JOB_ID = {
    "in": "path",
    "name": "job_id",
    "required": True,
    "schema": {"type": "string"},
    "description": "The job's id.",
}
PROJECT_ID = JOB_ID | {"name": "project_id", "description": "The project's id."}
_NOT_VISIBLE = {404: {"description": "Unknown job, or not a member of its project"}}
# Proxies and browsers drop an idle stream; a comment line keeps it open.
_KEEPALIVE_SECONDS = 15.0
_EVENTS_DESCRIPTION = """A `text/event-stream` of the job:

* `status` `{"id", "status"}` whenever the status changes;
* `stdout` / `stderr` `{"text"}` with each new piece of output, live;
* `done` with the final `job` object, after which the stream ends.

A client that connects after the job finished gets its final status and
output, then `done`."""


@routes.post("/api/jobs")
@docs(
    tags=TAGS,
    summary="Run code",
    description="Either `document_id` (its text at the head when submitted; `job.seq` names"
    " that event) or `project_id` + `language` + `source`. Editor or owner. The job is queued"
    " (202); follow it with `GET /api/jobs/{job_id}/events`. 413 when `source` or `stdin` is"
    " too large, 503 when the queue is full or unreachable (nothing was accepted).",
    responses=error_responses(
        403,
        404,
        413,
        422,
        503,
        s403="A viewer, or a session cookie from another site",
        s404="Unknown project or document, or not a member",
        s413="`source` or `stdin` too large",
        s422="Invalid fields; `document_id` and `project_id` together (send one of them)",
        s503="Queue full or unavailable; retry later",
    ),
)
@request_schema(JobSubmitSchema, required=True)
@response_schema(JobSchema, 202, description="The queued job.")
async def submit_job(request: web.Request) -> web.Response:
    """Queue a job."""
    data = body(request)
    job = await request.app[JOBS].submit(await _new_job(request, data))
    announcer = request.app.get(JOB_ANNOUNCER)
    if announcer is not None:
        await announcer.started(request.app[JOBS], job, current_user(request).id)
    return web.json_response(job.to_json(), status=202, headers={"Location": f"/api/jobs/{job.id}"})


@routes.get("/api/jobs/{job_id}")
@docs(tags=TAGS, summary="Read a job", parameters=[JOB_ID], responses=_NOT_VISIBLE)
@response_schema(JobSchema, 200)
async def get_job(request: web.Request) -> web.Response:
    """One job; any member of its project."""
    job = await _visible_job(request, Role.VIEWER)
    return web.json_response(job.to_json())


@routes.get("/api/projects/{project_id}/jobs")
@docs(
    tags=TAGS,
    summary="List a project's jobs",
    description="Newest first; any member.",
    parameters=[PROJECT_ID],
    responses={404: {"description": "Unknown project, or not a member"}},
)
@request_schema(JobListQuerySchema, location="querystring")
@response_schema(JobListSchema, 200)
async def list_jobs(request: web.Request) -> web.Response:
    """The project's newest jobs."""
    project_id = request.match_info["project_id"]
    await require_project_role(_db(request), project_id, current_user(request).id)
    limit: int = JobListQuerySchema().load(dict(request.query))["limit"]
    jobs = await request.app[JOBS].store.list_for_project(project_id, limit=limit)
    return web.json_response({"items": [job.to_json() for job in jobs]})


@routes.get("/api/jobs/{job_id}/events")
@docs(
    tags=TAGS,
    summary="Follow a job live",
    description=_EVENTS_DESCRIPTION,
    parameters=[JOB_ID],
    responses={
        200: {
            "description": "Server-sent events until `done`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_NOT_VISIBLE,
    },
)
async def job_event_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events of one job."""
    job = await _visible_job(request, Role.VIEWER)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        }
    )
    await response.prepare(request)
    service = request.app[JOBS]
    closing = request.app.get(STREAMS_CLOSING) or asyncio.Event()
    last_write = time.monotonic()
    # aclosing: a client that goes away ends the subscription at once.
    async with contextlib.aclosing(job_events(service.store, service.bus, job)) as events:
        async for name, data in events:
            if closing.is_set():
                break  # the node is stopping: do not hold its shutdown until the job ends
            if name:
                await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            elif time.monotonic() - last_write >= _KEEPALIVE_SECONDS:
                await response.write(b": keep-alive\n\n")
            else:
                continue
            last_write = time.monotonic()
    await response.write_eof()
    return response


async def close_job_streams(app: web.Application) -> None:
    """``on_shutdown``: end open job event streams (within one poll, two seconds)."""
    closing = app.get(STREAMS_CLOSING)
    if closing is not None:
        closing.set()
    announcer = app.get(JOB_ANNOUNCER)
    if announcer is not None:
        await announcer.close()


@routes.post("/api/jobs/{job_id}/cancel")
@docs(
    tags=TAGS,
    summary="Cancel a job",
    description="Editor or owner. A queued job never starts; a running one is stopped within"
    " a second. Cancelling a finished job changes nothing. Answers with the job as it is now.",
    parameters=[JOB_ID],
    responses={403: {"description": "A viewer"}, **_NOT_VISIBLE},
)
@response_schema(JobSchema, 202, description="The job; its status may still be `running`.")
async def cancel_job(request: web.Request) -> web.Response:
    """Ask for the job to stop."""
    job = await _visible_job(request, Role.EDITOR)
    service = request.app[JOBS]
    await service.cancel(job.id)
    return web.json_response((await service.store.get(job.id) or job).to_json(), status=202)


def _db(request: web.Request) -> Database:
    return request.app[DATABASE]


async def _visible_job(request: web.Request, minimum: Role) -> Job:
    """The path's job, if the caller's role in its project is at least ``minimum``."""
    job = await request.app[JOBS].store.get(request.match_info["job_id"])
    if job is None:
        raise NotVisibleError("job not found")
    await require_project_role(_db(request), job.project_id, current_user(request).id, minimum)
    return job


async def _new_job(request: web.Request, data: dict[str, Any]) -> NewJob:
    """The job the body asks for, after the caller's role and the sizes are checked."""
    db, user_id = _db(request), current_user(request).id
    document_id: str | None = data.get("document_id")
    seq: int | None = None
    if document_id is not None:
        access = await require_document_role(db, document_id, user_id, Role.EDITOR)
        project_id, language = access.project_id, access.language
        if language not in LANGUAGES:
            raise JobRejectedError(
                f"documents in {language!r} cannot be run",
                details={"document_id": [f"Its language {language!r} cannot be run."]},
            )
        seq, source = await document_text(db, document_id)
    else:
        project_id, language, source = data["project_id"], data["language"], data["source"]
        await require_project_role(db, project_id, user_id, Role.EDITOR)
    _check_size("source", source, MAX_SOURCE_BYTES)
    _check_size("stdin", data["stdin"], MAX_STDIN_BYTES)
    return NewJob(
        project_id=project_id,
        document_id=document_id,
        seq=seq,
        submitted_by=user_id,
        language=language,
        source=source,
        stdin=data["stdin"],
        timeout_ms=data["timeout_ms"],
    )


def _check_size(name: str, text: str, limit: int) -> None:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise JobTooLargeError(
            f"{name} is {size} bytes; at most {limit} are allowed",
            details={name: [f"At most {limit} bytes (UTF-8)."]},
        )
