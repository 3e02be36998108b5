"""Jobs through Redis and real ``collab worker`` processes, on Postgres.

Each test gets its own Postgres schema and its own queue (stream) name, and
short leases so that a killed worker's job is picked up within seconds.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from eventstore import Database, open_database
from executor.options import JobOptions
from tests.conftest import TEST_SECRET, Client
from tests.executor.conftest import auth, collect_events, read_events, submit, wait_job
from tests.executor.workers import running_workers
from tests.realtime.seed import Seeded, seed

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

_LEASE = {
    "COLLAB_JOB_LEASE_SECONDS": "2",
    "COLLAB_JOB_HEARTBEAT_SECONDS": "0.5",
    "COLLAB_JOB_REAP_SECONDS": "0.5",
}


@pytest.fixture
async def queue_env(postgres_url: str, redis_url: str) -> AsyncIterator[dict[str, str]]:
    """The environment of this test's workers: its schema, its queue, short leases.

    The server under test gets the same ``COLLAB_JOB_*`` options through its
    settings (``server``).
    """
    queue = f"test-jobs-{uuid.uuid4().hex[:12]}"
    jobs = {"COLLAB_JOB_QUEUE": queue, **_LEASE}
    yield {"COLLAB_DATABASE_URL": postgres_url, "COLLAB_REDIS_URL": redis_url, **jobs}
    client = aioredis.from_url(redis_url)
    try:
        await client.delete(queue)
    finally:
        await client.aclose()


@pytest.fixture
async def server(
    queue_env: dict[str, str], tmp_path: Path, aiohttp_client: AiohttpClient
) -> Client:
    """A node that queues jobs to Redis (it runs none itself)."""
    settings = Settings(
        database_url=queue_env["COLLAB_DATABASE_URL"],
        redis_url=queue_env["COLLAB_REDIS_URL"],
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        node_id="test-node",
        jobs=JobOptions.from_env(queue_env),
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def team(server: Client) -> Seeded:
    """A project with an owner, an editor, a viewer and a stranger."""
    roles = {"owner": Role.OWNER, "editor": Role.EDITOR, "viewer": Role.VIEWER, "stranger": None}
    return await seed(server.app, roles)


@pytest.fixture
async def db(queue_env: dict[str, str]) -> AsyncIterator[Database]:
    """The test's schema, to look at what the API does not show (attempts, leases)."""
    async with open_database(queue_env["COLLAB_DATABASE_URL"]) as database:
        yield database


async def test_a_worker_runs_a_job_and_streams_it_live(
    server: Client, team: Seeded, queue_env: dict[str, str], tmp_path: Path
) -> None:
    async with running_workers(queue_env, 1, log_dir=tmp_path) as [worker]:
        source = "import time\nprint('one')\ntime.sleep(0.3)\nprint('two')"
        job = await submit(server, team, {"language": "python", "source": source})
        events = await collect_events(server, team, job["id"])
        await worker.wait_log("sandbox mode=")
    names = [name for name, _ in events]
    assert names[-1] == "done"
    assert events[-1][1]["status"] == "succeeded"
    assert events[-1][1]["stdout"] == "one\ntwo\n"
    assert "".join(data["text"] for name, data in events if name == "stdout") == "one\ntwo\n"
    statuses = [data["status"] for name, data in events if name == "status"]
    assert "running" in statuses
    assert statuses[-1] == "succeeded"
    assert "active:" in worker.log_text()


async def test_cancel_reaches_the_worker_within_a_second(
    server: Client, team: Seeded, queue_env: dict[str, str], tmp_path: Path
) -> None:
    async with running_workers(queue_env, 1, log_dir=tmp_path):
        source = "import time\nprint('started')\ntime.sleep(30)"
        job = await submit(server, team, {"language": "python", "source": source})
        async with asyncio.timeout(20):
            async for name, _ in read_events(server, team, job["id"]):
                if name == "stdout":
                    break
        started = time.monotonic()
        response = await server.post(f"/api/jobs/{job['id']}/cancel", headers=auth(team, "editor"))
        assert response.status == 202
        done = await wait_job(server, team, job["id"], within=5)
        assert time.monotonic() - started < 1.0
    assert (done["status"], done["stdout"]) == ("cancelled", "started\n")


async def test_killed_worker_job_finishes_on_another(
    server: Client, team: Seeded, queue_env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    async with running_workers(queue_env, 2, log_dir=tmp_path) as workers:
        source = "import time\nprint('begin')\ntime.sleep(2)\nprint('end')"
        job = await submit(server, team, {"language": "python", "source": source})
        owner = await _running_owner(db, job["id"])
        victim = next(w for w in workers if owner.startswith(f"{w.node_id}:"))
        await victim.stop(signal.SIGKILL)
        done = await wait_job(server, team, job["id"], within=30)
        survivor = next(w for w in workers if w is not victim)
        assert f"job {job['id']}: attempt 2 started by {survivor.node_id}:" in survivor.log_text()
    assert (done["status"], done["stdout"]) == ("succeeded", "begin\nend\n")
    assert await db.fetchval("SELECT attempts FROM jobs WHERE id = $1", job["id"]) == 2


async def test_job_ends_in_error_when_attempts_run_out(
    server: Client, team: Seeded, queue_env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    async with running_workers(queue_env, 2, log_dir=tmp_path) as workers:
        job = await submit(server, team, {"language": "python", "source": "while True: pass"})
        # The limit is stored per job when it is submitted; one attempt here.
        await db.execute("UPDATE jobs SET max_attempts = 1 WHERE id = $1", job["id"])
        owner = await _running_owner(db, job["id"])
        victim = next(w for w in workers if owner.startswith(f"{w.node_id}:"))
        await victim.stop(signal.SIGKILL)
        done = await wait_job(server, team, job["id"], within=20)
    assert done["status"] == "error"
    assert "stopped responding" in done["error"]
    assert done["finished_at"] is not None


async def test_sigterm_hands_a_running_job_to_another_worker(
    server: Client, team: Seeded, queue_env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    async with running_workers(queue_env, 2, log_dir=tmp_path) as workers:
        source = "import time\nprint('begin')\ntime.sleep(1)\nprint('end')"
        job = await submit(server, team, {"language": "python", "source": source})
        owner = await _running_owner(db, job["id"])
        leaving = next(w for w in workers if owner.startswith(f"{w.node_id}:"))
        assert await leaving.stop(signal.SIGTERM) == 0
        done = await wait_job(server, team, job["id"], within=30)
        assert "released for another runner" in leaving.log_text()
    assert (done["status"], done["stdout"]) == ("succeeded", "begin\nend\n")
    # A run its own worker interrupted does not count against the limit.
    assert await db.fetchval("SELECT attempts FROM jobs WHERE id = $1", job["id"]) == 1


async def test_two_hundred_jobs_over_two_workers_each_run_once(
    server: Client, team: Seeded, queue_env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    count = 200
    async with running_workers(queue_env, 2, log_dir=tmp_path) as workers:
        jobs = await asyncio.gather(
            *(
                submit(server, team, {"language": "python", "source": f"print({n})"})
                for n in range(count)
            )
        )
        expected = {job["id"]: f"{n}\n" for n, job in enumerate(jobs)}
        async with asyncio.timeout(90):
            while await db.fetchval(_UNFINISHED) > 0:  # noqa: ASYNC110 (polling the table)
                await asyncio.sleep(0.2)
        logs = [worker.log_text() for worker in workers]
    rows = await db.fetch("SELECT id, status, attempts, stdout FROM jobs")
    assert len(rows) == count
    assert {row["id"]: row["stdout"] for row in rows} == expected
    assert {row["status"] for row in rows} == {"succeeded"}
    # attempts counts claims: a job that ran twice would show 2.
    assert {row["attempts"] for row in rows} == {1}
    # Both workers took part, and no job started twice across them.
    starts = [line for log in logs for line in log.splitlines() if "started by" in line]
    assert len(starts) == count
    assert all(log.count("started by") > 0 for log in logs)


_UNFINISHED = "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"


async def _running_owner(db: Database, job_id: str) -> str:
    """The lease owner of a job once it runs."""
    async with asyncio.timeout(20):
        while True:
            row = await db.fetchrow("SELECT status, lease_owner FROM jobs WHERE id = $1", job_id)
            if row is not None and row["status"] == "running" and row["lease_owner"]:
                return str(row["lease_owner"])
            await asyncio.sleep(0.05)
