"""The server's jobs cleanup context.

With Redis configured the server only queues: ``collab worker`` processes
run the jobs. Without it (the embedded default) this process runs them
itself, ``concurrency`` at a time, with a reaper for runs cut short by a
crash or restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiohttp import web

from eventstore.keys import DATABASE
from executor.bus import InMemoryJobBus, RedisJobBus
from executor.keys import JOBS
from executor.options import JobOptions
from executor.queue import LocalJobQueue, TaskiqJobQueue, create_broker
from executor.reaper import Reaper
from executor.runner import JobRunner
from executor.sandbox import detect_protections
from executor.service import JobService
from executor.store import JobStore

logger = logging.getLogger(__name__)

# Shutdown waits this long for a reaper sweep to end (twice, the second
# time after cancelling it); the server's whole shutdown has ten seconds.
_SWEEP_SECONDS = 1.0


class JobSettings(Protocol):
    """What the jobs context reads of the server's settings (``collab.config.Settings``)."""

    @property
    def redis_url(self) -> str | None:
        """Set: queue to ``collab worker`` processes; unset: run jobs here."""
        ...

    @property
    def jobs(self) -> JobOptions:
        """How jobs are queued, leased and retried, and how many run at once here."""
        ...

    @property
    def node_id(self) -> str:
        """Names this process in job leases."""
        ...


def jobs_ctx(
    settings: JobSettings, *, readiness_checks: web.AppKey[list[Any]] | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that sets up :data:`executor.keys.JOBS`.

    Args:
        settings: The server's settings.
        readiness_checks: The server's list of ``(name, check)`` readiness
            checks; in embedded mode the active sandbox protections are
            reported there.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        options = settings.jobs
        store = JobStore(app[DATABASE], max_attempts=options.max_attempts)
        if settings.redis_url:
            opened = _redis_jobs(settings.redis_url, store, options)
        else:
            checks = [] if readiness_checks is None else app.setdefault(readiness_checks, [])
            opened = _local_jobs(settings, store, options, checks)
        async with opened as service:
            app[JOBS] = service
            yield

    return ctx


@contextlib.asynccontextmanager
async def _redis_jobs(
    redis_url: str, store: JobStore, options: JobOptions
) -> AsyncIterator[JobService]:
    client = aioredis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    broker = create_broker(redis_url, options)
    try:
        await broker.startup()
    except Exception as exc:  # Redis down at start: submits get 503 until it is back
        logger.warning("job queue %s not reachable yet: %s", options.queue_name, exc)
    logger.info("jobs go to collab worker processes through Redis (%s)", options.queue_name)
    try:
        bus = RedisJobBus(client, prefix=options.redis_prefix, queue_name=options.queue_name)
        yield JobService(store, TaskiqJobQueue(broker), bus, options)
    finally:
        await broker.shutdown()
        await client.aclose()


@contextlib.asynccontextmanager
async def _local_jobs(
    settings: JobSettings, store: JobStore, options: JobOptions, checks: list[Any]
) -> AsyncIterator[JobService]:
    protections = await asyncio.to_thread(detect_protections)
    concurrency = options.concurrency
    logger.info("jobs run in this process, %d at a time; %s", concurrency, protections.describe())
    checks.append(("sandbox", protections.describe))
    bus = InMemoryJobBus()
    owner = f"{settings.node_id}:{uuid.uuid4().hex[:8]}"
    runner = JobRunner(store, bus, owner=owner, options=options)
    queue = LocalJobQueue(runner.run, concurrency=concurrency)
    reaper = Reaper(store, queue, bus, options)
    async with bus.cancel_listener(runner.cancel_local), queue.running():
        # Jobs queued before a restart are only in the table now.
        await reaper.sweep(all_queued=True)
        reaping = asyncio.create_task(reaper.run_forever())
        try:
            yield JobService(store, queue, bus, options)
        finally:
            await _stop_reaper(reaper, reaping)
            await runner.shutdown()


async def _stop_reaper(reaper: Reaper, reaping: asyncio.Task[None]) -> None:
    reaper.stop()
    done, _ = await asyncio.wait([reaping], timeout=_SWEEP_SECONDS)
    if not done:
        # A sweep stuck on a hung database: cancelling its query drops the
        # connection. In-process the sweep never waits on Redis, where a
        # cancellation could be swallowed.
        reaping.cancel()
        await asyncio.wait([reaping], timeout=_SWEEP_SECONDS)
