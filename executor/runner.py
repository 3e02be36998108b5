"""Runs one job: claim it, run it in the sandbox under a lease, record the result.

This is the task body in both deployments: a taskiq worker calls
:meth:`JobRunner.run` for each message it receives, and the embedded server
calls it from its in-process queue. It is idempotent: a message for a job
that is finished, cancelled or held by a live lease changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from executor.bus import JobBus, JobEvent
from executor.metrics import JOB_START_SECONDS, JOBS_RUNNING, JOBS_TOTAL
from executor.models import CANCELLED, ERROR, RUNNING, Claim, Outcome
from executor.naming import path_renamer
from executor.options import JobOptions
from executor.output import LiveOutput
from executor.sandbox import Limits, RunResult, run_code
from executor.store import JobStore

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
# Shutdown waits this long for stopped jobs to hand themselves back; the
# server's whole shutdown has ten seconds.
_DRAIN_SECONDS = 3.0


class JobRunner:
    """Runs jobs for one process; ``owner`` names it in the leases it takes."""

    def __init__(
        self,
        store: JobStore,
        bus: JobBus,
        *,
        owner: str,
        options: JobOptions,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._bus = bus
        self._owner = owner
        self._options = options
        self._clock = clock
        self._cancels: dict[str, asyncio.Event] = {}
        self._cancel_requested: set[str] = set()
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """How many jobs this runner holds right now."""
        return len(self._cancels)

    def cancel_local(self, job_id: str) -> None:
        """Stop ``job_id`` if this runner runs it (a cancel request arrived)."""
        event = self._cancels.get(job_id)
        if event is not None:
            self._cancel_requested.add(job_id)
            event.set()

    def stop(self) -> None:
        """Refuse new jobs and stop the running ones; they go back to the queue."""
        self._stopping = True
        for event in self._cancels.values():
            event.set()

    async def shutdown(self) -> None:
        """:meth:`stop`, then wait (bounded) for the jobs to go back to the queue."""
        self.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                await self._idle.wait()

    async def run(self, job_id: str) -> None:
        """Run ``job_id`` if it is runnable; otherwise do nothing."""
        if job_id in self._cancels:
            return  # a duplicate delivery of a job this process already runs
        if self._stopping:
            # Acknowledged but not run: let the next sweep queue it again.
            await self._store.mark_stale(job_id)
            return
        # Registered before the claim, so a cancel published right after
        # the claim commits cannot miss this runner.
        cancel = self._cancels[job_id] = asyncio.Event()
        self._idle.clear()
        try:
            claim = await self._store.claim(
                job_id, self._owner, now=self._clock(), lease=self._options.lease_seconds
            )
            if claim is not None:
                await self._execute(claim, cancel)
        finally:
            del self._cancels[job_id]
            self._cancel_requested.discard(job_id)
            if not self._cancels:
                self._idle.set()

    async def _execute(self, claim: Claim, cancel: asyncio.Event) -> None:
        logger.info("job %s: attempt %d started by %s", claim.job_id, claim.attempt, self._owner)
        if claim.attempt == 1:
            JOB_START_SECONDS.observe(max(0.0, self._clock() - claim.created_at))
        await self._bus.publish(claim.job_id, JobEvent("status", status=RUNNING))
        JOBS_RUNNING.inc()
        rename = path_renamer(claim.language, claim.document_name)
        output = LiveOutput(self._bus, claim.job_id, rename)
        output.start()
        heartbeat = asyncio.create_task(self._heartbeat(claim.job_id, cancel, output))
        try:
            result = await self._sandboxed(claim, cancel, output)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await output.close()
            JOBS_RUNNING.dec()
        interrupted = result.status == CANCELLED and claim.job_id not in self._cancel_requested
        if self._stopping and interrupted:
            # Our shutdown stopped it, not a user: someone else runs it again.
            await self._store.release(claim.job_id, self._owner)
            logger.info("job %s: released for another runner (shutting down)", claim.job_id)
            return
        await self._finish(claim.job_id, _outcome(result, output.chunks_json(), rename))

    async def _sandboxed(
        self, claim: Claim, cancel: asyncio.Event, output: LiveOutput
    ) -> RunResult:
        limits = Limits(wall_ms=claim.timeout_ms, cpu_ms=claim.timeout_ms)
        try:
            return await run_code(
                claim.language,
                claim.source,
                stdin=claim.stdin,
                limits=limits,
                on_output=output.add,
                cancel=cancel,
            )
        except Exception:
            logger.exception("job %s: the sandbox failed", claim.job_id)
            return RunResult(ERROR, None, "", "", False, 0, "internal error while running the job")

    async def _heartbeat(self, job_id: str, cancel: asyncio.Event, output: LiveOutput) -> None:
        """Renew the lease, save the output so far, and notice cancels."""
        lease_until = self._clock() + self._options.lease_seconds
        while True:
            await asyncio.sleep(self._options.heartbeat_seconds)
            now = self._clock()
            try:
                requested = await self._store.renew(
                    job_id,
                    self._owner,
                    now=now,
                    lease=self._options.lease_seconds,
                    output=output.unsaved(),
                    chunks=output.chunks_json(),
                )
            except Exception as exc:  # the database is down, or worse: keep trying
                logger.warning("job %s: lease renewal failed: %s", job_id, exc)
                if now >= lease_until:
                    # Another runner may take the job over now; stop ours
                    # so that it never runs twice at once.
                    logger.warning("job %s: lease expired; stopping the run", job_id)
                    cancel.set()
                continue
            lease_until = now + self._options.lease_seconds
            if requested is None:
                logger.warning("job %s: lease lost; stopping the run", job_id)
                cancel.set()
            elif requested:
                self.cancel_local(job_id)

    async def _finish(self, job_id: str, outcome: Outcome) -> None:
        if not await self._store.finish(job_id, self._owner, outcome, now=self._clock()):
            logger.warning("job %s: lease lost before the result was stored; dropped", job_id)
            return
        logger.info("job %s: %s", job_id, outcome.status)
        JOBS_TOTAL.labels(outcome.status).inc()
        await announce_end(self._bus, job_id, outcome.status)


async def announce_end(bus: JobBus, job_id: str, status: str) -> None:
    """Tell the job's live readers its final status, then that it is done."""
    await bus.publish(job_id, JobEvent("status", status=status))
    await bus.publish(job_id, JobEvent("done"))


def _outcome(result: RunResult, chunks: str, rename: Callable[[str], str]) -> Outcome:
    error = result.error
    if result.status == CANCELLED:
        error = "cancelled while running"
    return Outcome(
        status=result.status,
        exit_code=result.exit_code,
        stdout=rename(result.stdout),
        stderr=rename(result.stderr),
        truncated=result.truncated,
        duration_ms=result.duration_ms,
        error=error,
        output=chunks,
    )
