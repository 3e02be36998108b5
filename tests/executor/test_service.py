"""Submitting when the queue cannot take a job, recovery after a restart, stream repair."""

from __future__ import annotations

import dataclasses
import time

import pytest
from pytest_aiohttp import AiohttpClient

from collab.app import create_app
from collab.config import Settings
from eventstore import Database
from eventstore.keys import DATABASE
from executor.bus import InMemoryJobBus, JobEvent
from executor.errors import QueueUnavailableError
from executor.models import NewJob
from executor.options import JobOptions
from executor.queue import TaskiqJobQueue, create_broker
from executor.service import JobService
from executor.store import JobStore
from executor.stream import job_events
from tests.auth.fixtures import assert_error
from tests.conftest import Client
from tests.executor.conftest import auth, submit, wait_job
from tests.realtime.seed import Seeded
from tests.services import free_port


def _new_job(project_id: str, source: str = "print('recovered')") -> NewJob:
    return NewJob(
        project_id=project_id,
        document_id=None,
        seq=None,
        submitted_by=None,
        language="python",
        source=source,
        stdin="",
        timeout_ms=5000,
    )


async def test_redis_down_means_503_and_no_job(client: Client, team: Seeded) -> None:
    options = JobOptions(queue_name="unreachable")
    broker = create_broker(f"redis://127.0.0.1:{free_port()}/0", options)
    store = JobStore(client.app[DATABASE])
    service = JobService(store, TaskiqJobQueue(broker), InMemoryJobBus(), options)
    try:
        with pytest.raises(QueueUnavailableError) as info:
            await service.submit(_new_job(team.project_id))
    finally:
        await broker.shutdown()
    assert info.value.status == 503
    assert await store.list_for_project(team.project_id, limit=10) == []


async def test_full_queue_means_503(
    settings: Settings, team: Seeded, aiohttp_client: AiohttpClient
) -> None:
    jobs = dataclasses.replace(settings.jobs, max_queued=1, concurrency=1)
    node = await aiohttp_client(create_app(dataclasses.replace(settings, jobs=jobs)))
    sleeper = {"language": "python", "source": "import time\ntime.sleep(30)"}
    running = await submit(node, team, sleeper)
    await wait_job(node, team, running["id"], until=("running",))
    queued = await submit(node, team, sleeper)
    body = {"project_id": team.project_id, **sleeper}
    response = await node.post("/api/jobs", json=body, headers=auth(team, "editor"))
    await assert_error(response, 503, "service_unavailable")
    for job in (queued, running):
        await node.post(f"/api/jobs/{job['id']}/cancel", headers=auth(team, "editor"))
        assert (await wait_job(node, team, job["id"]))["status"] == "cancelled"


async def test_jobs_left_by_a_dead_process_run_after_a_restart(
    settings: Settings, client: Client, team: Seeded, aiohttp_client: AiohttpClient
) -> None:
    db: Database = client.app[DATABASE]
    store = JobStore(db)
    # Queued, but its in-memory queue died with the process.
    queued = await store.create(_new_job(team.project_id), now=time.time())
    # Running under a process that died; its lease has expired.
    orphan = await store.create(_new_job(team.project_id), now=time.time())
    assert await store.claim(orphan.id, "dead-node:1", now=time.time() - 60, lease=1)
    # A fresh node on the same database picks both up at start.
    node = await aiohttp_client(create_app(dataclasses.replace(settings, node_id="fresh")))
    for job_id in (queued.id, orphan.id):
        done = await wait_job(node, team, job_id)
        assert (done["status"], done["stdout"]) == ("succeeded", "recovered\n")
    assert await db.fetchval("SELECT attempts FROM jobs WHERE id = $1", orphan.id) == 2


async def test_event_stream_repairs_a_dropped_piece_from_the_table(
    client: Client, team: Seeded
) -> None:
    store, bus = JobStore(client.app[DATABASE]), InMemoryJobBus()
    job = await store.create(_new_job(team.project_id), now=time.time())
    assert await store.claim(job.id, "runner", now=time.time(), lease=30)
    events = job_events(store, bus, job, poll_seconds=5.0)
    assert await anext(events) == ("status", {"id": job.id, "status": "running"})
    # The runner saved "ab" but the piece "b" never reached this stream.
    await store.renew(job.id, "runner", now=time.time(), lease=30, output=("ab", ""))
    await bus.publish(job.id, JobEvent("stdout", text="a", offset=0))
    await bus.publish(job.id, JobEvent("stdout", text="c", offset=2))
    await bus.publish(job.id, JobEvent("stdout", text="bc", offset=1))  # a late duplicate
    assert await anext(events) == ("stdout", {"text": "a"})
    assert await anext(events) == ("stdout", {"text": "b"})
    assert await anext(events) == ("stdout", {"text": "c"})
    await bus.publish(job.id, JobEvent("stdout", text="d", offset=3))
    assert await anext(events) == ("stdout", {"text": "d"})
    await events.aclose()


async def test_a_quiet_stream_yields_keep_alive_markers(client: Client, team: Seeded) -> None:
    store = JobStore(client.app[DATABASE])
    job = await store.create(_new_job(team.project_id), now=time.time())
    events = job_events(store, InMemoryJobBus(), job, poll_seconds=0.05)
    assert await anext(events) == ("status", {"id": job.id, "status": "queued"})
    assert await anext(events) == ("", {})
    await events.aclose()
