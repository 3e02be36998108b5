"""``collab worker``: runs jobs from the Redis stream until SIGTERM or SIGINT.

Several workers share one queue (a consumer group). Each also runs a
reaper, so a job whose worker died is queued again (or ends ``error``)
as long as any worker is alive. On SIGTERM a worker stops taking messages,
stops its running jobs and hands them back to the queue, then exits.

It reads no environment: ``collab worker`` passes the server's settings,
``COLLAB_JOB_*`` included (as ``JobOptions``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import uuid
from typing import Protocol

import redis.asyncio as aioredis
from taskiq import AsyncBroker
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from eventstore import EventStoreError, apply_migrations, open_database
from executor.bus import RedisJobBus
from executor.options import JobOptions
from executor.queue import TaskiqJobQueue, create_broker, register_run_job
from executor.reaper import Reaper
from executor.runner import JobRunner
from executor.sandbox import detect_protections
from executor.store import JobStore

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0
# After SIGTERM, how long the receiver may take to let its tasks end.
_STOP_SECONDS = 10.0


class WorkerSettings(Protocol):
    """What a worker reads of the server's settings (``collab.config.Settings``)."""

    @property
    def redis_url(self) -> str | None:
        """The queue's Redis; required."""
        ...

    @property
    def database_url(self) -> str:
        """The database holding the jobs (PostgreSQL)."""
        ...

    @property
    def node_id(self) -> str:
        """Names this worker in job leases and logs."""
        ...

    @property
    def jobs(self) -> JobOptions:
        """The queue, leases, retries and how many jobs run at once."""
        ...


def run_worker(settings: WorkerSettings) -> int:
    """Run one worker process until a signal arrives.

    Args:
        settings: The deployment's settings.

    Returns:
        The process exit code.
    """
    redis_url = settings.redis_url
    if not redis_url:
        print(
            "collab worker: COLLAB_REDIS_URL must be set (jobs come through Redis)", file=sys.stderr
        )
        return 2
    options = settings.jobs
    try:
        asyncio.run(
            _work(redis_url, settings.database_url, options, options.concurrency, settings.node_id)
        )
    except EventStoreError as exc:
        print(f"collab worker: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


async def _work(
    redis_url: str, database_url: str, options: JobOptions, concurrency: int, node_id: str
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    protections = await asyncio.to_thread(detect_protections)
    logger.info(
        "worker %s: %d job(s) at a time from queue %s; %s",
        node_id,
        concurrency,
        options.queue_name,
        protections.describe(),
    )
    async with open_database(database_url) as db:
        await apply_migrations(db)
        client = aioredis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        broker = create_broker(redis_url, options)
        broker.is_worker_process = True
        store = JobStore(db, max_attempts=options.max_attempts)
        bus = RedisJobBus(client, prefix=options.redis_prefix, queue_name=options.queue_name)
        runner = JobRunner(store, bus, owner=f"{node_id}:{uuid.uuid4().hex[:8]}", options=options)
        register_run_job(broker, runner.run)
        reaper = Reaper(store, TaskiqJobQueue(broker), bus, options)
        try:
            async with bus.cancel_listener(runner.cancel_local):
                await _serve(broker, runner, reaper, concurrency, stop)
        finally:
            await broker.shutdown()
            await client.aclose()
    logger.info("worker %s stopped", node_id)


async def _serve(
    broker: AsyncBroker, runner: JobRunner, reaper: Reaper, concurrency: int, stop: asyncio.Event
) -> None:
    """Receive and reap until ``stop`` is set, then hand running jobs back."""
    finish = asyncio.Event()
    listening = asyncio.create_task(_listen(broker, concurrency, finish))
    reaping = asyncio.create_task(reaper.run_forever())
    try:
        await stop.wait()
    finally:
        logger.info("stopping: no new jobs; running ones go back to the queue")
        finish.set()
        reaper.stop()
        await runner.shutdown()
        done, _ = await asyncio.wait([listening, reaping], timeout=_STOP_SECONDS)
        for task in (listening, reaping):
            if task not in done:
                logger.warning("%s did not stop in time; cancelling it", task.get_coro())
                task.cancel()
        await asyncio.wait([listening, reaping], timeout=_STOP_SECONDS)


async def _listen(broker: AsyncBroker, concurrency: int, finish: asyncio.Event) -> None:
    """Run a receiver, starting a new one whenever Redis fails, until ``finish``."""
    while not finish.is_set():
        receiver = Receiver(
            broker,
            max_async_tasks=concurrency,
            # Fetch a message only when a slot is free: a killed worker then
            # strands no messages beyond the jobs it was running.
            max_prefetch=0,
            run_startup=False,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
        )
        try:
            # The consumer group is (re)declared each time: Redis may have
            # restarted empty.
            await broker.startup()
            await receiver.listen(finish)
        except Exception as exc:  # Redis errors come in many classes; all mean "retry"
            logger.warning("job queue unavailable (%s); retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RETRY_SECONDS):
                    await finish.wait()
