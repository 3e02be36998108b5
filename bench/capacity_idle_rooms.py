"""Idle rooms: CPU and database queries of a node holding many open, quiet documents.

Usage (from the repository root; needs Postgres and Redis)::

    .venv/bin/python -m bench.capacity_idle_rooms [--rooms 10000] [--seconds 30] [--quick]

Runs one ``collab serve`` node with Redis (so the relay and its periodic head
check run), opens ``--rooms`` documents with one idle WebSocket client each
(a minimal client: it connects and then only answers pings), waits for the
opening to settle, then for ``--seconds`` measures the node's CPU (user +
system, as a share of one core) and the statements run against the bench's
own Postgres schema (index and sequential scans, inserts and updates of its
tables from ``pg_stat_user_tables``, which other databases' traffic does not
touch). One JSON line; the targets are at most 2% of a core and at most 10
queries/s. The stock server has no counterpart (no database, no relay).

``--quick`` opens 500 rooms and measures 15 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid

import aiohttp

from bench.capacity_connections import cpu_seconds
from bench.common import (
    collab_nodes,
    fetch_metrics,
    postgres_database,
    require_redis,
    seed_document,
)
from eventstore import open_database
from eventstore.logs import create_log
from tests.services import REDIS_URL

_DOCUMENT = (
    "INSERT INTO documents (id, project_id, name, language, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'python', $4, $4)"
)
_ACTIVITY = """
SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0) + n_tup_ins + n_tup_upd), 0)
FROM pg_stat_user_tables WHERE schemaname = current_schema()"""
# Postgres backends report their statistics up to ~10 s late when idle:
# the opening's queries must be counted before the window starts.
_SETTLE_SECONDS = 15.0
_OPEN_CHUNK = 100
_LOAD_WAIT_SECONDS = 30.0


async def add_documents(url: str, project_id: str, count: int) -> list[str]:
    """``count`` more documents of the project, with their logs."""
    doc_ids = [uuid.uuid4().hex for _ in range(count)]
    async with open_database(url) as db, db.transaction() as conn:
        now = time.time()
        for doc_id in doc_ids:
            await conn.execute(_DOCUMENT, doc_id, project_id, f"{doc_id}.py", now)
            await create_log(conn, doc_id)
    return doc_ids


async def loaded_rooms(http: aiohttp.ClientSession, base_url: str) -> int:
    """How many rooms the node holds now."""
    return int((await fetch_metrics(http, base_url)).get("collab_rooms_loaded", 0))


async def wait_loaded(http: aiohttp.ClientSession, base_url: str, rooms: int) -> int:
    """Wait (a bounded time) until the node holds ``rooms`` rooms; return how many it holds.

    A connection returns before its room loads; a room that failed to load
    (its client was told to retry, which this minimal client does not) is
    simply not counted.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_LOAD_WAIT_SECONDS):
            while await loaded_rooms(http, base_url) < rooms:  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.5)
    return await loaded_rooms(http, base_url)


async def statements(url: str) -> int:
    """Scans and writes counted so far against this schema's tables."""
    async with open_database(url) as db:
        await db.execute("SELECT pg_stat_clear_snapshot()")
        return int(await db.fetchval(_ACTIVITY))


async def main(rooms: int, seconds: float) -> None:
    """Open the rooms, let them settle, measure the quiet."""
    require_redis()
    async with postgres_database() as url:
        seeded = await seed_document(url)
        doc_ids = [seeded.doc_id, *await add_documents(url, seeded.project_id, rooms - 1)]
        token = seeded.tokens["writer"]
        async with (
            collab_nodes(url, 1, redis_url=REDIS_URL) as nodes,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):
            node = nodes[0]
            sockets = []
            for start in range(0, len(doc_ids), _OPEN_CHUNK):
                chunk = doc_ids[start : start + _OPEN_CHUNK]
                sockets += await asyncio.gather(
                    *(http.ws_connect(f"{node.ws_url}/{d}?token={token}") for d in chunk)
                )
                await wait_loaded(http, node.url, len(sockets))
            await asyncio.sleep(_SETTLE_SECONDS)
            pid = node.process.pid
            cpu, queries, started = cpu_seconds(pid), await statements(url), time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - started
            used, ran = cpu_seconds(pid) - cpu, await statements(url) - queries
            open_now = await loaded_rooms(http, node.url)
            await asyncio.gather(*(ws.close() for ws in sockets))
    print(
        json.dumps(
            {
                "bench": "capacity_idle_rooms",
                "figure": "idle_rooms",
                "rooms": rooms,
                "rooms_loaded": open_now,
                "seconds": round(elapsed, 1),
                "cpu_percent_of_core": round(100 * used / elapsed, 2),
                "queries_per_second": round(ran / elapsed, 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="500 rooms for 15 seconds")
    args = parser.parse_args()
    asyncio.run(main(500 if args.quick else args.rooms, 15.0 if args.quick else args.seconds))
