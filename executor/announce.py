"""Tell a job's whole project that it started and how it finished.

The server that accepted a job announces ``job.started`` (with who started
it) and then follows the job on the bus until it is done and announces
``job.finished`` with the final job. Where the announcements go is the
caller's business (``collab`` sends them to the project's live event
streams): this package only needs an async callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from executor.models import Job
from executor.service import JobService
from executor.stream import job_events

logger = logging.getLogger(__name__)

Announce = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""``(type, project_id, data)``: deliver one announcement."""
# A job waits in the queue, then runs up to its timeout; following it
# longer than this means it was lost, and readers find its end in the table.
FOLLOW_SECONDS = 900.0


class JobAnnouncer:
    """Announces the start and end of the jobs this node accepted."""

    def __init__(self, announce: Announce) -> None:
        """Send announcements through ``announce``."""
        self._announce = announce
        self._watches: set[asyncio.Task[None]] = set()

    async def started(self, service: JobService, job: Job, started_by: str) -> None:
        """Announce ``job.started`` now and ``job.finished`` when it ends."""
        await self._announce("job.started", job.project_id, _data(job.to_json(), started_by))
        watch = asyncio.create_task(self._follow(service, job, started_by))
        self._watches.add(watch)
        watch.add_done_callback(self._watches.discard)

    async def close(self) -> None:
        """Stop following jobs (shutdown); their pages still see them end via the job stream."""
        for watch in list(self._watches):
            watch.cancel()
        for watch in list(self._watches):
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _follow(self, service: JobService, job: Job, started_by: str) -> None:
        try:
            async with asyncio.timeout(FOLLOW_SECONDS):
                async with contextlib.aclosing(
                    job_events(service.store, service.bus, job)
                ) as events:
                    async for name, data in events:
                        if name == "done":
                            await self._announce(
                                "job.finished", job.project_id, _data(data, started_by)
                            )
                            return
        except TimeoutError:
            logger.info("job %s: not finished in time; no job.finished", job.id)
        except Exception:
            logger.exception("job %s: following it for job.finished failed", job.id)


def _data(job: dict[str, Any], started_by: str) -> dict[str, Any]:
    return {**job, "started_by": started_by}
