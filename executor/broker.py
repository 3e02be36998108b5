"""The taskiq broker over a Redis stream, and the queue the server sends to.

``RedisStreamBroker`` acknowledges a message only after its task ran, but
it redelivers a dead worker's message only when new messages arrive and
after ``idle_timeout``; so it is a delivery hint, and the reaper (which
reads leases from the database) is what guarantees a retry.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from executor.errors import QueueUnavailableError
from executor.options import JobOptions

TASK_NAME = "collab.run_job"
_SEND_TIMEOUT = 3.0
# A message is redelivered by the broker itself once unacknowledged this
# long: longer than any run (60 s) plus its reporting, so a live worker's
# message is never handed to a second one. Dead workers are found sooner
# by the reaper.
_IDLE_MS = 5 * 60 * 1000
_STREAM_MAXLEN = 100_000


def create_broker(redis_url: str, options: JobOptions) -> RedisStreamBroker:
    """A stream broker for ``options.queue_name``."""
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
