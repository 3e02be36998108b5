"""Where runnable job ids go: the seam between submitting and running.

``JobQueue`` is what the service and the reaper send to. Two kinds:

* ``TaskiqJobQueue`` appends them to a Redis stream through the taskiq
  broker of ``create_broker``; ``collab worker`` processes receive them and
  run the task that ``register_run_job`` registers.
* ``LocalJobQueue`` runs them in this process with bounded concurrency, for
  the embedded single-node default.

Either way the job's row, not the message, says whether there is anything
left to do: a message is only a hint to look at the row.

``RedisStreamBroker`` acknowledges a message only after its task ran, but
it redelivers a dead worker's message only when new messages arrive and
after ``idle_timeout``; so it is a delivery hint, and the reaper (which
reads leases from the database) is what guarantees a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from redis.exceptions import RedisError
from taskiq import AsyncBroker
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from executor.errors import QueueUnavailableError
from executor.options import JobOptions

logger = logging.getLogger(__name__)

TASK_NAME = "collab.run_job"
_SEND_TIMEOUT = 3.0
# A message is redelivered by the broker itself once unacknowledged this
# long: longer than any run (60 s) plus its reporting, so a live worker's
# message is never handed to a second one. Dead workers are found sooner
# by the reaper.
_IDLE_MS = 5 * 60 * 1000
_STREAM_MAXLEN = 100_000


class JobQueue(Protocol):
    """Accepts ids of jobs that are ready to run."""

    async def enqueue(self, job_id: str) -> None:
        """Queue ``job_id``.

        Raises:
            QueueUnavailableError: it could not be queued.
        """
        ...


class LocalJobQueue:
    """An in-process queue drained by a fixed number of runner tasks.

    It is deliberately not taskiq's ``InMemoryBroker``: that broker starts
    one unowned task per message and runs them all at once, while here the
    concurrency bound and the tasks' lifetime belong to this object.
    """

    def __init__(self, run: Callable[[str], Awaitable[None]], *, concurrency: int) -> None:
        self._run = run
        self._concurrency = concurrency
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def enqueue(self, job_id: str) -> None:
        """Queue ``job_id``; never fails (the table bounds the queue)."""
        self._queue.put_nowait(job_id)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run queued jobs until the context closes."""
        tasks = [asyncio.create_task(self._drain()) for _ in range(self._concurrency)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _drain(self) -> None:
        while True:
            job_id = await self._queue.get()
            try:
                await self._run(job_id)
            except Exception:
                # The row is untouched or still leased: the reaper retries it.
                logger.exception("job %s: run failed", job_id)


def create_broker(redis_url: str, options: JobOptions) -> RedisStreamBroker:
    """A stream broker for ``options.queue_name``.

    Args:
        redis_url: The Redis holding the stream.
        options: Names the stream (and its consumer group).

    Returns:
        The broker, not started.
    """
    return RedisStreamBroker(
        redis_url,
        queue_name=options.queue_name,
        consumer_group_name=options.queue_name,
        # "0": a group created after jobs were queued still reads them all
        # (the default "$" would skip what the server sent before any worker
        # started).
        consumer_id="0",
        # One message per read: a worker holds no more messages than it runs,
        # so a killed worker strands at most those.
        xread_count=1,
        idle_timeout=_IDLE_MS,
        unacknowledged_lock_timeout=5.0,
        maxlen=_STREAM_MAXLEN,
        socket_connect_timeout=2,
        # Commands (not the blocking XREADGROUP, which waits 2 s) fail after
        # this, and waiting for a pooled connection after ``timeout``.
        socket_timeout=10,
        timeout=5,
    )


class TaskiqJobQueue:
    """Sends job ids to the workers through the broker."""

    def __init__(self, broker: RedisStreamBroker) -> None:
        self._kicker: AsyncKicker[[str], None] = AsyncKicker(TASK_NAME, broker, labels={})

    async def enqueue(self, job_id: str) -> None:
        """Append a message to the stream.

        Raises:
            QueueUnavailableError: Redis did not take it in time.
        """
        try:
            async with asyncio.timeout(_SEND_TIMEOUT):
                await self._kicker.kiq(job_id)
        except (SendTaskError, RedisError, OSError) as exc:
            raise QueueUnavailableError("the job queue is unavailable; try again") from exc


def register_run_job(broker: AsyncBroker, run: Callable[[str], Awaitable[None]]) -> None:
    """Register the task ``collab.run_job(job_id)`` on ``broker``.

    One message names one job; the worker's runner does the rest.

    Args:
        broker: The worker's broker.
        run: Runs one job by id (``JobRunner.run``).
    """

    async def run_job(job_id: str) -> None:
        await run(job_id)

    broker.register_task(run_job, task_name=TASK_NAME)
