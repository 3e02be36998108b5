"""Typed application state owned by the executor package."""

import asyncio

from aiohttp import web

from executor.announce import JobAnnouncer
from executor.service import JobService

JOBS = web.AppKey("executor.jobs", JobService)
# Set at shutdown: open job event streams end (clients resume from GET /api/jobs/{id}).
STREAMS_CLOSING = web.AppKey("executor.streams_closing", asyncio.Event)
# Optional: announces job.started/job.finished to the job's project.
JOB_ANNOUNCER = web.AppKey("executor.job_announcer", JobAnnouncer)
