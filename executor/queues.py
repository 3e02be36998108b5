"""Where runnable job ids go: the seam between submitting and running.

``TaskiqJobQueue`` (``executor.broker``) sends them to ``collab worker``
processes through Redis; ``LocalJobQueue`` runs them in this process with
bounded concurrency, for the embedded single-node default. Either way the
job's row, not the message, says whether there is anything left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

logger = logging.getLogger(__name__)


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
