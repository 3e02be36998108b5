"""Submitting and cancelling jobs: what the routes call."""

from __future__ import annotations

import time

from executor.bus import JobBus
from executor.errors import QueueUnavailableError
from executor.metrics import JOBS_TOTAL
from executor.models import CANCELLED, Job, NewJob
from executor.options import JobOptions
from executor.queue import JobQueue
from executor.runner import announce_end
from executor.store import JobStore


class JobService:
    """What the routes do with jobs."""

    def __init__(self, store: JobStore, queue: JobQueue, bus: JobBus, options: JobOptions) -> None:
        self.store = store
        self.bus = bus
        self._queue = queue
        self._options = options

    async def submit(self, job: NewJob) -> Job:
        """Store and queue a job.

        Raises:
            QueueUnavailableError: the queue is full or unreachable; nothing
                was accepted.
        """
        if await self.store.count_queued() >= self._options.max_queued:
            raise QueueUnavailableError("too many jobs are waiting; try again later")
        created = await self.store.create(job, now=time.time())
        try:
            await self._queue.enqueue(created.id)
        except QueueUnavailableError:
            await self.store.delete_queued(created.id)
            raise
        return created

    async def cancel(self, job_id: str) -> None:
        """Cancel a job: a queued one never starts, a running one is stopped."""
        outcome = await self.store.request_cancel(job_id, now=time.time())
        if outcome == "cancelled":
            JOBS_TOTAL.labels(CANCELLED).inc()
            await announce_end(self.bus, job_id, CANCELLED)
        elif outcome == "requested":
            await self.bus.request_cancel(job_id)
