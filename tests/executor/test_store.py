"""The jobs table's state machine on both engines: every transition is conditional."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from eventstore import Database
from executor.models import NewJob, Outcome
from executor.store import JobStore


@pytest.fixture
async def store(db: Database) -> JobStore:
    """A store over a database holding one project."""
    now = time.time()
    await db.execute(
        "INSERT INTO users (id, email, display_name, password_hash, created_at)"
        " VALUES ('u', 'u@example.com', 'U', 'x', $1)",
        now,
    )
    await db.execute(
        "INSERT INTO projects (id, name, description, owner_id, created_at)"
        " VALUES ('p', 'P', '', 'u', $1)",
        now,
    )
    return JobStore(db, max_attempts=2)


async def _job(store: JobStore, *, now: float = 1000.0) -> str:
    new = NewJob(
        project_id="p",
        document_id=None,
        seq=None,
        submitted_by="u",
        language="python",
        source="print(1)",
        stdin="",
        timeout_ms=1000,
    )
    return (await store.create(new, now=now)).id


async def test_only_one_of_many_concurrent_claims_wins(store: JobStore) -> None:
    job_id = await _job(store)
    claims = await asyncio.gather(
        *(store.claim(job_id, f"owner-{n}", now=1001.0, lease=30) for n in range(10))
    )
    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    assert (won[0].attempt, won[0].source, won[0].created_at) == (1, "print(1)", 1000.0)
    job = await store.get(job_id)
    assert job is not None
    assert (job.status, job.started_at) == ("running", 1001.0)


async def test_a_finished_job_is_never_claimed_again(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.claim(job_id, "a", now=1001.0, lease=30) is not None
    outcome = Outcome("succeeded", 0, "1\n", "", False, 12)
    assert await store.finish(job_id, "a", outcome, now=1002.0)
    for now in (1003.0, 5000.0):  # even long after the lease would have expired
        assert await store.claim(job_id, "b", now=now, lease=30) is None
    reaped = await store.reap(now=5000.0, stale_before=5000.0)
    assert (reaped.requeued, reaped.failed, reaped.cancelled) == ([], [], [])
    job = await store.get(job_id)
    assert job is not None
    assert (job.status, job.stdout, job.duration_ms, job.finished_at) == (
        "succeeded",
        "1\n",
        12,
        1002.0,
    )


async def test_expired_lease_passes_to_another_runner(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.claim(job_id, "a", now=1000.0, lease=10) is not None
    assert await store.claim(job_id, "b", now=1005.0, lease=10) is None
    assert await store.renew(job_id, "a", now=1005.0, lease=10) is False
    taken = await store.claim(job_id, "b", now=1016.0, lease=10)
    assert taken is not None
    assert taken.attempt == 2
    # The first runner lost its lease: it can neither renew nor overwrite.
    assert await store.renew(job_id, "a", now=1017.0, lease=10) is None
    assert not await store.finish(job_id, "a", Outcome("failed", 1), now=1017.0)
    assert await store.finish(job_id, "b", Outcome("succeeded", 0), now=1018.0)


async def test_reaper_retries_then_gives_up(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.claim(job_id, "a", now=1000.0, lease=1) is not None
    reaped = await store.reap(now=1002.0, stale_before=0.0)
    assert reaped.requeued == [job_id]
    job = await store.get(job_id)
    assert job is not None
    assert job.status == "queued"
    assert await store.claim(job_id, "b", now=1003.0, lease=1) is not None
    reaped = await store.reap(now=1005.0, stale_before=0.0)
    assert (reaped.requeued, reaped.failed) == ([], [job_id])
    job = await store.get(job_id)
    assert job is not None
    assert job.status == "error"
    assert job.error is not None
    assert "stopped responding" in job.error
    assert job.finished_at == 1005.0


async def test_cancel_of_a_queued_job_means_it_never_starts(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.request_cancel(job_id, now=1001.0) == "cancelled"
    assert await store.claim(job_id, "a", now=1002.0, lease=30) is None
    job = await store.get(job_id)
    assert job is not None
    assert (job.status, job.started_at, job.finished_at) == ("cancelled", None, 1001.0)
    assert await store.request_cancel(job_id, now=1003.0) is None
    assert await store.request_cancel("no-such-job", now=1003.0) is None


async def test_cancel_of_a_running_job_is_a_flag_its_runner_sees(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.claim(job_id, "a", now=1000.0, lease=10) is not None
    assert await store.request_cancel(job_id, now=1001.0) == "requested"
    assert await store.renew(job_id, "a", now=1002.0, lease=10) is True
    # If its runner died, the reaper settles it as cancelled, not retried.
    reaped = await store.reap(now=1100.0, stale_before=0.0)
    assert (reaped.cancelled, reaped.requeued) == ([job_id], [])


async def test_release_does_not_count_the_attempt(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.claim(job_id, "a", now=1000.0, lease=10) is not None
    assert not await store.release(job_id, "b")
    assert await store.release(job_id, "a")
    reaped = await store.reap(now=1001.0, stale_before=1.0)
    assert reaped.requeued == [job_id]  # released jobs are queued again at once
    claim = await store.claim(job_id, "b", now=1002.0, lease=10)
    assert claim is not None
    assert claim.attempt == 1


async def test_stale_queued_jobs_are_requeued_once_per_period(store: JobStore) -> None:
    old, new = await _job(store, now=1000.0), await _job(store, now=2000.0)
    reaped = await store.reap(now=2001.0, stale_before=1500.0)
    assert reaped.requeued == [old]
    reaped = await store.reap(now=2002.0, stale_before=1500.0)
    assert reaped.requeued == []
    assert new not in reaped.requeued


async def test_output_the_database_cannot_hold_is_made_safe(store: JobStore) -> None:
    job_id = await _job(store)
    assert await store.claim(job_id, "a", now=1000.0, lease=10) is not None
    partial = ("a\x00b", "\ud800")
    assert await store.renew(job_id, "a", now=1001.0, lease=10, output=partial) is False
    outcome = Outcome("succeeded", 0, "x\x00y", "lone \udc80", False, 5)
    assert await store.finish(job_id, "a", outcome, now=1002.0)
    job = await store.get(job_id)
    assert job is not None
    assert (job.stdout, job.stderr) == ("x\ufffdy", "lone ?")


async def test_list_and_count(store: JobStore) -> None:
    ids = [await _job(store, now=1000.0 + n) for n in range(3)]
    assert [job.id for job in await store.list_for_project("p", limit=2)] == ids[:0:-1]
    assert await store.count_queued() == 3
    await store.delete_queued(ids[0])
    assert await store.count_queued() == 2
    assert await store.get(ids[0]) is None
    assert await store.get(uuid.uuid4().hex) is None
