"""Every Redis key and channel of the jobs starts with ``COLLAB_REDIS_PREFIX``.

Deployments share one Redis by choosing different prefixes, so a name
outside the prefix would mix two deployments' queues or cancels.
"""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from collab.config import Settings
from executor.bus import JobEvent, RedisJobBus
from executor.queue import TaskiqJobQueue, create_broker


async def _channels(client: aioredis.Redis, *needles: str, count: int) -> list[str]:
    """The active pub/sub channels naming any of ``needles``, once ``count`` are there."""
    found: list[str] = []
    async with asyncio.timeout(5):
        while len(found) < count:
            raw = await client.pubsub_channels()
            names = [name.decode() if isinstance(name, bytes) else name for name in raw]
            found = [name for name in names if any(needle in name for needle in needles)]
            await asyncio.sleep(0.02)
    return found


async def test_keys_and_channels_start_with_the_prefix(redis_url: str) -> None:
    prefix = f"test-prefix-{uuid.uuid4().hex[:12]}"
    options = Settings.from_env({"COLLAB_REDIS_PREFIX": prefix}).jobs
    assert options.queue_name == f"{prefix}:jobs"
    job_id = uuid.uuid4().hex
    client = aioredis.from_url(redis_url)
    broker = create_broker(redis_url, options)
    bus = RedisJobBus(client, prefix=options.redis_prefix, queue_name=options.queue_name)
    cancelled: list[str] = []
    try:
        await broker.startup()
        await TaskiqJobQueue(broker).enqueue(job_id)
        async with bus.subscribe(job_id) as events, bus.cancel_listener(cancelled.append):
            # The job's event channel and the queue's cancel channel.
            channels = await _channels(client, prefix, job_id, count=2)
            await bus.publish(job_id, JobEvent("status", status="running"))
            assert await events.get(5) == JobEvent("status", status="running")
            await bus.request_cancel(job_id)
            async with asyncio.timeout(5):
                while not cancelled:  # noqa: ASYNC110 (the listener runs on its own task)
                    await asyncio.sleep(0.02)
        keys = [key.decode() async for key in client.scan_iter(match=f"*{prefix}*")]
    finally:
        await broker.shutdown()
        await client.delete(options.queue_name)
        await client.aclose()
    assert cancelled == [job_id]
    assert sorted(channels) == sorted(
        [f"{prefix}:job:{job_id}", f"{prefix}:job-cancel:{prefix}:jobs"]
    )
    assert keys == [f"{prefix}:jobs"]
