"""Idle rooms: CPU and database queries of a node holding many open, quiet documents.

Usage (from the repository root; needs Postgres and Redis)::

    .venv/bin/python -m bench.capacity_idle_rooms [--rooms 10000] [--projects 1] [--seconds 30]
        [--clients-per-room 1] [--concurrency 50] [--quick]

Runs one ``collab serve`` node with Redis (so the relay and its periodic head
check run), opens ``--rooms`` documents with one idle WebSocket client each
(a minimal client: it connects, waits for the node's greeting, which comes
once the room is loaded, and then only reads, so it answers pings and drops
what it is sent), at most ``--concurrency`` opening at once. It waits for the
opening to settle, then for ``--seconds`` measures the node's CPU (user +
system, as a share of one core) and the statements run against the bench's
own Postgres schema (index and sequential scans, inserts and updates of its
tables from ``pg_stat_user_tables``, which other databases' traffic does not
touch). The documents are spread evenly over ``--projects`` projects of one
user (some of the node's periodic work goes per project). With
``--clients-per-room`` above 1 (at most the per-user cap, 20) the same number
of connections can hold fewer rooms, which tells what the connections cost
and what the rooms cost. Progress goes to
stderr; the result is one JSON line with the opening time too. The targets are
at most 2% of a core and at most 10 queries/s. The stock server has no
counterpart (no database, no relay).

``--quick`` opens 500 rooms and measures 15 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field

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

_PROJECT = (
    "INSERT INTO projects (id, name, description, owner_id, created_at) VALUES ($1, $2, '', $3, $4)"
)
_MEMBER = (
    "INSERT INTO project_members (project_id, user_id, role, created_at)"
    " VALUES ($1, $2, 'owner', $3)"
)
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
# A greeting later than this means the node is overwhelmed: report it, do not wait forever.
_GREETING_SECONDS = 120.0
_PROGRESS_EVERY = 1_000


@dataclass(slots=True)
class Opening:
    """The idle clients: their sockets and readers, and how the opening went."""

    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def progress(self, total: int) -> None:
        """A line on stderr now and then: opening 10,000 clients takes a minute or more."""
        done = len(self.sockets) + len(self.failed)
        if done % _PROGRESS_EVERY == 0 or done == total:
            elapsed = time.perf_counter() - self.started
            print(
                f"opened {len(self.sockets):,}/{total:,} clients ({len(self.failed)} failed)"
                f" in {elapsed:.1f} s, {len(self.sockets) / elapsed:.0f}/s",
                file=sys.stderr,
                flush=True,
            )


async def add_projects(url: str, owner_id: str, count: int) -> list[str]:
    """``count`` more projects owned by ``owner_id``."""
    project_ids = [uuid.uuid4().hex for _ in range(count)]
    async with open_database(url) as db, db.transaction() as conn:
        now = time.time()
        for project_id in project_ids:
            await conn.execute(_PROJECT, project_id, f"Idle {project_id}", owner_id, now)
            await conn.execute(_MEMBER, project_id, owner_id, now)
    return project_ids


async def add_documents(url: str, project_ids: list[str], count: int) -> list[str]:
    """``count`` more documents, dealt round the projects, with their logs."""
    doc_ids = [uuid.uuid4().hex for _ in range(count)]
    async with open_database(url) as db, db.transaction() as conn:
        now = time.time()
        for i, doc_id in enumerate(doc_ids):
            project_id = project_ids[i % len(project_ids)]
            await conn.execute(_DOCUMENT, doc_id, project_id, f"{doc_id}.py", now)
            await create_log(conn, doc_id)
    return doc_ids


async def loaded_rooms(http: aiohttp.ClientSession, base_url: str) -> int:
    """How many rooms the node holds now."""
    return int((await fetch_metrics(http, base_url)).get("collab_rooms_loaded", 0))


async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read until the socket closes: aiohttp answers the node's pings only while reading."""
    async for _ in ws:
        pass


async def open_room(
    http: aiohttp.ClientSession, url: str, opening: Opening, slots: asyncio.Semaphore
) -> None:
    """Connect one idle client and wait for its greeting (the room is loaded then).

    A client the node refuses or closes (told to retry, which this minimal
    client does not) is counted as failed, with the reason.
    """
    async with slots:
        try:
            ws = await http.ws_connect(url, autoping=True)
        except (aiohttp.ClientError, OSError) as exc:
            opening.failed.append(f"connect: {exc}")
            return
        try:
            async with asyncio.timeout(_GREETING_SECONDS):
                greeting = await ws.receive()
        except TimeoutError:
            opening.failed.append("no greeting")
            await ws.close()
            return
    if greeting.type is not aiohttp.WSMsgType.BINARY:
        opening.failed.append(f"closed {ws.close_code}: {greeting.extra}")
        return
    opening.sockets.append(ws)
    opening.readers.append(asyncio.create_task(drain(ws)))


async def open_rooms(http: aiohttp.ClientSession, urls: list[str], concurrency: int) -> Opening:
    """One idle client per URL, at most ``concurrency`` opening at once."""
    opening = Opening()
    slots = asyncio.Semaphore(concurrency)

    async def one(url: str) -> None:
        await open_room(http, url, opening, slots)
        opening.progress(len(urls))

    await asyncio.gather(*(one(url) for url in urls))
    return opening


async def close_rooms(opening: Opening) -> None:
    """Close every client and let its reader finish."""
    await asyncio.gather(*(ws.close() for ws in opening.sockets))
    for reader in opening.readers:
        reader.cancel()
    await asyncio.gather(*opening.readers, return_exceptions=True)


async def statements(url: str) -> int:
    """Scans and writes counted so far against this schema's tables."""
    async with open_database(url) as db:
        await db.execute("SELECT pg_stat_clear_snapshot()")
        return int(await db.fetchval(_ACTIVITY))


async def main(
    rooms: int, seconds: float, concurrency: int, projects: int = 1, per_room: int = 1
) -> None:
    """Open the rooms, let them settle, measure the quiet."""
    require_redis()
    async with postgres_database() as url:
        seeded = await seed_document(url)
        owner = seeded.users["writer"].id
        project_ids = [seeded.project_id, *await add_projects(url, owner, projects - 1)]
        # The seeded document is in the first project; the others start with the second.
        dealt = project_ids[1:] + project_ids[:1]
        doc_ids = [seeded.doc_id, *await add_documents(url, dealt, rooms - 1)]
        token = seeded.tokens["writer"]
        async with (
            collab_nodes(url, 1, redis_url=REDIS_URL) as nodes,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):
            node = nodes[0]
            urls = [f"{node.ws_url}/{d}?token={token}" for d in doc_ids for _ in range(per_room)]
            opening = await open_rooms(http, urls, concurrency)
            open_seconds = time.perf_counter() - opening.started
            await asyncio.sleep(_SETTLE_SECONDS)
            pid = node.process.pid
            print(f"measuring node pid {pid} for {seconds:.0f} s", file=sys.stderr, flush=True)
            cpu, queries, started = cpu_seconds(pid), await statements(url), time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - started
            used, ran = cpu_seconds(pid) - cpu, await statements(url) - queries
            open_now = await loaded_rooms(http, node.url)
            await close_rooms(opening)
    print(
        json.dumps(
            {
                "bench": "capacity_idle_rooms",
                "figure": "idle_rooms",
                "rooms": rooms,
                "projects": projects,
                "clients": len(opening.sockets),
                "rooms_loaded": open_now,
                "open_failed": len(opening.failed),
                "open_failures": sorted(set(opening.failed))[:5],
                "open_seconds": round(open_seconds, 1),
                "opened_per_second": round(len(opening.sockets) / open_seconds, 1),
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
    parser.add_argument(
        "--concurrency", type=int, default=50, help="clients opening at once (default 50)"
    )
    parser.add_argument(
        "--projects", type=int, default=1, help="projects the documents are spread over"
    )
    parser.add_argument(
        "--clients-per-room", type=int, default=1, help="idle clients on each document"
    )
    parser.add_argument("--quick", action="store_true", help="500 rooms for 15 seconds")
    args = parser.parse_args()
    rooms, seconds = (500, 15.0) if args.quick else (args.rooms, args.seconds)
    projects = max(1, min(args.projects, rooms))
    asyncio.run(main(rooms, seconds, args.concurrency, projects, max(1, args.clients_per_room)))
