"""The jobs table: the one source of truth for a job's state.

Every transition is a single conditional ``UPDATE``, so two workers, a
worker and the reaper, or a worker and a cancel can race freely and exactly
one of them wins:

* claim: ``queued`` (or ``running`` with an expired lease) → ``running``,
  taking a lease and counting an attempt;
* renew: extends the lease only while the same owner still holds it;
* finish: ``running`` → final, only by the lease owner, so a runner that
  lost its lease can never overwrite the result of the one that took over;
* reap: expired leases go back to ``queued`` until ``max_attempts``, then
  to ``error``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from eventstore import Database
from executor.models import JOB_COLUMNS, Claim, Job, NewJob, Outcome

_INSERT = """
INSERT INTO jobs (id, project_id, document_id, seq, submitted_by, language, source, stdin,
                  timeout_ms, status, max_attempts, enqueued_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $11, $11)"""
_GET = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"  # noqa: S608 (constant columns)
_LIST = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE project_id = $1"  # noqa: S608 (constant columns)
    " ORDER BY created_at DESC, id DESC LIMIT $2"
)
_DELETE = "DELETE FROM jobs WHERE id = $1 AND status = 'queued'"
_COUNT_QUEUED = "SELECT count(*) FROM jobs WHERE status = 'queued'"
_CLAIM = """
UPDATE jobs
SET status = 'running', attempts = attempts + 1, lease_owner = $2, lease_expires_at = $4,
    started_at = $3, stdout = '', stderr = '', output = '[]', error = NULL
WHERE id = $1 AND NOT cancel_requested AND attempts < max_attempts
  AND (status = 'queued' OR (status = 'running' AND lease_expires_at < $3))
RETURNING language, source, stdin, timeout_ms, attempts, created_at,
    (SELECT d.name FROM documents d WHERE d.id = jobs.document_id) AS document_name"""
_RENEW = """
UPDATE jobs SET lease_expires_at = $3
WHERE id = $1 AND lease_owner = $2 AND status = 'running'
RETURNING cancel_requested"""
_RENEW_WITH_OUTPUT = """
UPDATE jobs SET lease_expires_at = $3, stdout = $4, stderr = $5, output = $6
WHERE id = $1 AND lease_owner = $2 AND status = 'running'
RETURNING cancel_requested"""
_FINISH = """
UPDATE jobs
SET status = $3, exit_code = $4, stdout = $5, stderr = $6, truncated = $7, duration_ms = $8,
    error = $9, finished_at = $10, lease_owner = NULL, lease_expires_at = NULL, output = $11
WHERE id = $1 AND lease_owner = $2 AND status = 'running'"""
# A run interrupted by its own worker's shutdown does not count as an
# attempt; enqueued_at = 0 makes the next reaper sweep re-queue it at once.
_RELEASE = """
UPDATE jobs
SET status = 'queued', attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
    enqueued_at = 0, stdout = '', stderr = '', output = '[]'
WHERE id = $1 AND lease_owner = $2 AND status = 'running'"""
_MARK_STALE = "UPDATE jobs SET enqueued_at = 0 WHERE id = $1 AND status = 'queued'"
_CANCEL_QUEUED = """
UPDATE jobs SET status = 'cancelled', cancel_requested = TRUE, finished_at = $2,
    error = 'cancelled before it started'
WHERE id = $1 AND status = 'queued'"""
_CANCEL_RUNNING = """
UPDATE jobs SET cancel_requested = TRUE WHERE id = $1 AND status = 'running'"""
_REAP_CANCELLED = """
UPDATE jobs
SET status = 'cancelled', finished_at = $1, lease_owner = NULL, lease_expires_at = NULL,
    error = 'cancelled; its worker stopped responding'
WHERE status = 'running' AND lease_expires_at < $1 AND cancel_requested
RETURNING id"""
_REAP_EXHAUSTED = """
UPDATE jobs
SET status = 'error', finished_at = $1, lease_owner = NULL, lease_expires_at = NULL,
    error = $2
WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts
RETURNING id"""
_REAP_RETRY = """
UPDATE jobs
SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, enqueued_at = $1
WHERE status = 'running' AND lease_expires_at < $1
RETURNING id"""
_REAP_STALE = """
UPDATE jobs SET enqueued_at = $1
WHERE status = 'queued' AND enqueued_at < $2
RETURNING id"""
_EXHAUSTED_ERROR = "the worker running this job stopped responding on every attempt; giving up"


@dataclass(frozen=True, slots=True)
class Reaped:
    """What one reaper sweep changed."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL, and asyncpg refuses lone surrogates.
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


class JobStore:
    """Queries of the jobs table, written once for both engines."""

    def __init__(self, db: Database, *, max_attempts: int = 3) -> None:
        self._db = db
        self._max_attempts = max_attempts

    async def create(self, job: NewJob, *, now: float) -> Job:
        """Store a new ``queued`` job and return it."""
        job_id = uuid.uuid4().hex
        await self._db.execute(
            _INSERT,
            job_id,
            job.project_id,
            job.document_id,
            job.seq,
            job.submitted_by,
            job.language,
            job.source,
            job.stdin,
            job.timeout_ms,
            self._max_attempts,
            now,
        )
        created = await self.get(job_id)
        if created is None:
            raise RuntimeError(f"job {job_id} vanished right after it was stored")
        return created

    async def get(self, job_id: str) -> Job | None:
        """The job, or None."""
        row = await self._db.fetchrow(_GET, job_id)
        return None if row is None else Job.from_row(row)

    async def list_for_project(self, project_id: str, *, limit: int) -> list[Job]:
        """The project's newest jobs first."""
        return [Job.from_row(row) for row in await self._db.fetch(_LIST, project_id, limit)]

    async def delete_queued(self, job_id: str) -> None:
        """Forget a job that was never queued (its enqueue failed)."""
        await self._db.execute(_DELETE, job_id)

    async def count_queued(self) -> int:
        """How many jobs wait for a runner."""
        return int(await self._db.fetchval(_COUNT_QUEUED))

    async def claim(self, job_id: str, owner: str, *, now: float, lease: float) -> Claim | None:
        """Take the job if it is runnable; None if finished, cancelled or held by another."""
        row = await self._db.fetchrow(_CLAIM, job_id, owner, now, now + lease)
        if row is None:
            return None
        return Claim(
            job_id,
            row["language"],
            row["source"],
            row["stdin"],
            row["timeout_ms"],
            row["attempts"],
            row["created_at"],
            row["document_name"],
        )

    async def renew(
        self,
        job_id: str,
        owner: str,
        *,
        now: float,
        lease: float,
        output: tuple[str, str] | None = None,
        chunks: str = "[]",
    ) -> bool | None:
        """Extend the lease, saving the output so far when given.

        Returns:
            Whether a cancel was requested; None when the lease was lost.
        """
        if output is None:
            row = await self._db.fetchrow(_RENEW, job_id, owner, now + lease)
        else:
            stdout, stderr = output
            row = await self._db.fetchrow(
                _RENEW_WITH_OUTPUT,
                job_id,
                owner,
                now + lease,
                _clean(stdout),
                _clean(stderr),
                _clean(chunks),
            )
        return None if row is None else bool(row["cancel_requested"])

    async def finish(self, job_id: str, owner: str, outcome: Outcome, *, now: float) -> bool:
        """Record the result; False when this owner no longer held the job."""
        touched = await self._db.execute(
            _FINISH,
            job_id,
            owner,
            outcome.status,
            outcome.exit_code,
            _clean(outcome.stdout),
            _clean(outcome.stderr),
            outcome.truncated,
            outcome.duration_ms,
            outcome.error,
            now,
            _clean(outcome.output),
        )
        return touched == 1

    async def release(self, job_id: str, owner: str) -> bool:
        """Give a job back to the queue without counting the attempt."""
        return await self._db.execute(_RELEASE, job_id, owner) == 1

    async def mark_stale(self, job_id: str) -> None:
        """Make the next reaper sweep re-queue this queued job."""
        await self._db.execute(_MARK_STALE, job_id)

    async def request_cancel(self, job_id: str, *, now: float) -> str | None:
        """Cancel a queued job outright, or flag a running one.

        Returns:
            ``"cancelled"`` (it will never start), ``"requested"`` (its
            runner must stop it), or None (already finished or unknown).
        """
        # A job can move between the two statements (claimed, or re-queued
        # by the reaper); a few rounds settle it.
        for _ in range(3):
            if await self._db.execute(_CANCEL_QUEUED, job_id, now) == 1:
                return "cancelled"
            if await self._db.execute(_CANCEL_RUNNING, job_id) == 1:
                return "requested"
            job = await self.get(job_id)
            if job is None or job.finished:
                return None
        return None

    async def reap(self, *, now: float, stale_before: float) -> Reaped:
        """Settle expired leases and find queued jobs whose message may be lost."""
        async with self._db.transaction() as conn:
            cancelled = await conn.fetch(_REAP_CANCELLED, now)
            failed = await conn.fetch(_REAP_EXHAUSTED, now, _EXHAUSTED_ERROR)
            retried = await conn.fetch(_REAP_RETRY, now)
            stale = await conn.fetch(_REAP_STALE, now, stale_before)
        return Reaped(
            requeued=[r["id"] for r in retried] + [r["id"] for r in stale],
            failed=[r["id"] for r in failed],
            cancelled=[r["id"] for r in cancelled],
        )
