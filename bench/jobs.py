"""Job throughput and latency with real ``collab worker`` processes.

Usage (from the repository root, with Postgres and Redis running)::

    .venv/bin/python -m bench.jobs --workers 1 2 4 --jobs 200

For each worker count it starts that many workers on a fresh Postgres schema
and a private Redis stream, queues ``--jobs`` jobs at once (each one a small
Python program), waits until all finish and prints a table: jobs per second
from the first submit to the last finish, and submit-to-start latency (p50,
p99) read from the jobs table. Latency under that burst is mostly waiting in
the queue, so ``--idle-jobs`` more jobs are then submitted one at a time
(each after the previous finished) to show the pickup latency of an idle
queue.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from eventstore import Database, apply_migrations, open_database
from executor.bus import InMemoryJobBus
from executor.models import NewJob
from executor.options import JobOptions
from executor.queue import TaskiqJobQueue, create_broker
from executor.service import JobService
from executor.store import JobStore
from tests.executor.workers import running_workers
from tests.services import POSTGRES_URL, REDIS_URL, fresh_postgres_schema

_SOURCE = "print(sum(range(1000)))"
_UNFINISHED = "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')"
_TIMES = """
SELECT status, created_at, started_at, finished_at, duration_ms FROM jobs"""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the result table."""

    workers: int
    concurrency: int
    jobs: int
    failed: int
    seconds: float
    start_p50_ms: float
    start_p99_ms: float
    run_p50_ms: float
    idle_p50_ms: float
    idle_p99_ms: float

    @property
    def per_second(self) -> float:
        """Jobs finished per second."""
        return self.jobs / self.seconds


async def _project(db: Database) -> str:
    now = time.time()
    await db.execute(
        "INSERT INTO users (id, email, display_name, password_hash, created_at)"
        " VALUES ('bench', 'bench@example.com', 'Bench', 'x', $1)",
        now,
    )
    await db.execute(
        "INSERT INTO projects (id, name, description, owner_id, created_at)"
        " VALUES ('bench', 'Bench', '', 'bench', $1)",
        now,
    )
    return "bench"


def _job(project_id: str) -> NewJob:
    return NewJob(
        project_id=project_id,
        document_id=None,
        seq=None,
        submitted_by=None,
        language="python",
        source=_SOURCE,
        stdin="",
        timeout_ms=10_000,
    )


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _one_at_a_time(service: JobService, db: Database, project_id: str, jobs: int) -> None:
    for _ in range(jobs):
        await service.submit(_job(project_id))
        async with asyncio.timeout(60):
            while await db.fetchval(_UNFINISHED):  # noqa: ASYNC110 (polling the table)
                await asyncio.sleep(0.01)


def _start_ms(rows: list[dict[str, Any]]) -> list[float]:
    return [(r["started_at"] - r["created_at"]) * 1000 for r in rows]


async def _measure(args: argparse.Namespace, workers: int, log_dir: Path) -> Row:
    concurrency, jobs = args.concurrency, args.jobs
    options = JobOptions(queue_name=f"bench-jobs-{uuid.uuid4().hex[:12]}", max_queued=10 * jobs)
    async with fresh_postgres_schema() as url, open_database(url) as db:
        await apply_migrations(db)
        project_id = await _project(db)
        env = {
            "COLLAB_DATABASE_URL": url,
            "COLLAB_REDIS_URL": REDIS_URL,
            "COLLAB_JOB_QUEUE": options.queue_name,
            "COLLAB_JOB_CONCURRENCY": str(concurrency),
        }
        broker = create_broker(REDIS_URL, options)
        await broker.startup()
        service = JobService(JobStore(db), TaskiqJobQueue(broker), InMemoryJobBus(), options)
        try:
            async with running_workers(env, workers, log_dir=log_dir):
                started = time.time()
                await asyncio.gather(*(service.submit(_job(project_id)) for _ in range(jobs)))
                async with asyncio.timeout(600):
                    while await db.fetchval(_UNFINISHED):  # noqa: ASYNC110 (polling the table)
                        await asyncio.sleep(0.05)
                rows = await db.fetch(_TIMES)
                await db.execute("DELETE FROM jobs")
                await _one_at_a_time(service, db, project_id, args.idle_jobs)
                idle = _start_ms(await db.fetch(_TIMES))
        finally:
            await broker.shutdown()
            await _drop_stream(options.queue_name)
    starts = _start_ms(rows)
    return Row(
        workers=workers,
        concurrency=concurrency,
        jobs=jobs,
        failed=sum(r["status"] != "succeeded" for r in rows),
        seconds=max(r["finished_at"] for r in rows) - started,
        start_p50_ms=_percentile(starts, 0.50),
        start_p99_ms=_percentile(starts, 0.99),
        run_p50_ms=statistics.median(r["duration_ms"] for r in rows),
        idle_p50_ms=_percentile(idle, 0.50),
        idle_p99_ms=_percentile(idle, 0.99),
    )


async def _drop_stream(name: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.delete(name)
    finally:
        await client.aclose()


def _print(rows: list[Row]) -> None:
    header = (
        f"{'workers':>7} {'slots':>5} {'jobs':>5} {'failed':>6} {'seconds':>7}"
        f" {'jobs/s':>7} {'start p50':>10} {'start p99':>10} {'run p50':>8}"
        f" {'idle p50':>9} {'idle p99':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.workers:>7} {r.workers * r.concurrency:>5} {r.jobs:>5} {r.failed:>6}"
            f" {r.seconds:>7.2f} {r.per_second:>7.1f} {r.start_p50_ms:>8.0f}ms"
            f" {r.start_p99_ms:>8.0f}ms {r.run_p50_ms:>6.0f}ms"
            f" {r.idle_p50_ms:>7.0f}ms {r.idle_p99_ms:>7.0f}ms"
        )


async def _main(args: argparse.Namespace, log_dir: Path) -> None:
    print(f"postgres {POSTGRES_URL.split('@')[-1]}, redis {REDIS_URL}, {os.cpu_count()} CPUs")
    print(f"worker logs in {log_dir}")
    rows = []
    for workers in args.workers:
        rows.append(await _measure(args, workers, log_dir))
    _print(rows)


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=2, help="jobs at once per worker")
    parser.add_argument("--jobs", type=int, default=200, help="jobs queued at once")
    parser.add_argument("--log-dir", help="where workers write their logs (default: a temp dir)")
    parser.add_argument("--idle-jobs", type=int, default=30, help="jobs run one at a time")
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the workers are killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parser.parse_args()
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bench-jobs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_main(args, log_dir))


if __name__ == "__main__":
    main()
