"""Finds jobs whose runner died and queues them again, or gives up on them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

from eventstore import EventStoreError
from executor.bus import JobBus
from executor.errors import QueueUnavailableError
from executor.metrics import JOBS_REAPED, JOBS_TOTAL
from executor.models import CANCELLED, ERROR
from executor.options import JobOptions
from executor.queue import JobQueue
from executor.runner import Clock, announce_end
from executor.store import JobStore, Reaped

logger = logging.getLogger(__name__)


class Reaper:
    """Settles expired leases; every worker (or the embedded server) runs one.

    Several reapers may sweep at once: each transition is a conditional
    UPDATE, so each expired job is settled by exactly one of them.
    """

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        bus: JobBus,
        options: JobOptions,
        *,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._queue = queue
        self._bus = bus
        self._options = options
        self._clock = clock
        self._stopped = asyncio.Event()

    async def sweep(self, *, all_queued: bool = False) -> Reaped:
        """One pass.

        Args:
            all_queued: queue every queued job again, not only those queued
                for ``requeue_seconds``: for a process whose in-memory queue
                started empty.
        """
        now = self._clock()
        stale_before = math.inf if all_queued else now - self._options.requeue_seconds
        reaped = await self._store.reap(now=now, stale_before=stale_before)
        for job_id in dict.fromkeys(reaped.requeued):
            await self._requeue(job_id)
        for status, job_ids in ((ERROR, reaped.failed), (CANCELLED, reaped.cancelled)):
            for job_id in job_ids:
                logger.warning("job %s: lease expired; now %s", job_id, status)
                JOBS_TOTAL.labels(status).inc()
                await announce_end(self._bus, job_id, status)
        JOBS_REAPED.labels("requeued").inc(len(reaped.requeued))
        JOBS_REAPED.labels("failed").inc(len(reaped.failed))
        JOBS_REAPED.labels("cancelled").inc(len(reaped.cancelled))
        return reaped

    async def run_forever(self) -> None:
        """Sweep every ``reap_seconds`` until :meth:`stop`."""
        while not self._stopped.is_set():
            try:
                await self.sweep()
            except EventStoreError as exc:
                logger.warning("reaper sweep failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._options.reap_seconds):
                    await self._stopped.wait()

    def stop(self) -> None:
        """End :meth:`run_forever` after its current sweep.

        A sweep may be inside a Redis command, where redis-py 8 can swallow
        a cancellation, so the loop is stopped this way, not cancelled.
        """
        self._stopped.set()

    async def _requeue(self, job_id: str) -> None:
        try:
            await self._queue.enqueue(job_id)
        except QueueUnavailableError:
            # Still queued in the table; the next sweep tries again.
            await self._store.mark_stale(job_id)
            logger.warning("job %s: could not be queued again; will retry", job_id)
        else:
            logger.info("job %s: queued again", job_id)
