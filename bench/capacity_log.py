"""Capacity of the event log: bytes per event, snapshot bytes, time travel, verify.

Usage (from the repository root; needs Postgres)::

    .venv/bin/python -m bench.capacity_log [--events 260000] [--quick] [--batch 50]

Builds one document of ``--events`` keystrokes (seeded random typing: runs of
5-60 characters at a random place, one backspace in ten), appended in commits
of ``--batch`` events (50, as a room commits under load; 1 is slow typing,
one commit per keystroke), with a snapshot every 500 events saved the way a
room saves them (the retention policy thins them as it goes). Then it prints
one JSON line per figure:

* ``log_bytes``: on-disk bytes per event of every table holding events
  (the packed blocks and the tail), with their indexes and TOAST, and each
  table's total;
* ``snapshots``: how many are kept and their total bytes, against the state size;
* ``time_travel``: rebuilding the document at random seqs (milliseconds);
* ``verify``: ``collab replay --verify`` as a separate process: events/s and
  its peak memory (``ru_maxrss``).

``--quick`` uses 20,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from typing import Any

from pycrdt import Doc, Text

from bench.common import REPO_ROOT, postgres_database, seed_document
from eventstore import open_database
from eventstore.crdt import encode_state
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.replay import rebuild

SNAPSHOT_EVERY = 500
COMMIT_BATCH = 50
# Every table that holds events (a table that does not exist counts nothing).
EVENT_TABLES = ("doc_events", "doc_event_blocks")
TIME_TRAVEL_SAMPLES = 20
_SIZE_QUERY = """
SELECT pg_total_relation_size(c.oid) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND n.nspname = current_schema()"""

_SNAPSHOT_BYTES = "SELECT count(*), coalesce(sum(length(state)), 0) FROM doc_snapshots"


def emit(figure: str, **values: Any) -> None:
    """One JSON line of figures."""
    print(json.dumps({"bench": "capacity_log", "figure": figure, **values}), flush=True)


def keystrokes(count: int, seed: int = 7) -> list[bytes]:
    """``count`` single-keystroke Yjs updates of realistic typing."""
    doc: Doc[Any] = Doc(client_id=4242)
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    rng = random.Random(seed)
    while len(updates) < count:
        cursor = rng.randint(0, len(text))
        for _ in range(rng.randint(5, 60)):
            if rng.random() < 0.1 and cursor > 0:
                del text[cursor - 1 : cursor]
                cursor -= 1
            else:
                text.insert(cursor, rng.choice("abcdefghijklmnop \n"))
                cursor += 1
    return updates[:count]


async def build_log(
    url: str, doc_id: str, author: str, updates: list[bytes], commit_batch: int = COMMIT_BATCH
) -> None:
    """Append ``updates`` in commits of ``commit_batch``, a snapshot every SNAPSHOT_EVERY events."""
    async with open_database(url) as db:
        log = EventLog(db)
        shadow: Doc[Any] = Doc(client_id=1)
        last_snapshot = 0
        for start in range(0, len(updates), commit_batch):
            batch = updates[start : start + commit_batch]
            events = [NewEvent("update", u, author, "bench-node-1") for u in batch]
            stored = await log.append(doc_id, events)
            with shadow.transaction():
                for update in batch:
                    shadow.apply_update(update)
            if stored[-1].seq - last_snapshot >= SNAPSHOT_EVERY:
                await log.save_snapshot(doc_id, stored[-1].seq, encode_state(shadow))
                last_snapshot = stored[-1].seq


async def measure_sizes(url: str, events: int, commit_batch: int) -> None:
    """Bytes on disk per event, and the snapshots kept."""
    async with open_database(url) as db:
        tables = {table: await db.fetchval(_SIZE_QUERY, table) or 0 for table in EVENT_TABLES}
        table_bytes = sum(tables.values())
        count, snapshot_bytes = (await db.fetch(_SNAPSHOT_BYTES))[0].values()
        log = EventLog(db)
        doc_id = (await db.fetchrow("SELECT doc_id FROM doc_heads LIMIT 1") or {})["doc_id"]
        newest = await log.latest_snapshot(doc_id)
    emit(
        "log_bytes",
        events=events,
        commit_batch=commit_batch,
        bytes_per_event=round(table_bytes / events, 1),
        table_bytes=tables,
    )
    state = len(newest.state) if newest else 0
    emit(
        "snapshots",
        events=events,
        kept=count,
        without_retention=events // SNAPSHOT_EVERY,
        total_bytes=snapshot_bytes,
        newest_state_bytes=state,
        total_over_state=round(snapshot_bytes / state, 1) if state else None,
    )


async def measure_time_travel(url: str, doc_id: str, events: int) -> None:
    """Milliseconds to rebuild the document at random seqs."""
    rng = random.Random(1)
    samples = []
    async with open_database(url) as db:
        log = EventLog(db)
        for _ in range(TIME_TRAVEL_SAMPLES):
            at = rng.randint(1, events)
            started = time.perf_counter()
            rebuilt = await rebuild(log, doc_id, at=at)
            samples.append(((time.perf_counter() - started) * 1000, rebuilt.events_read))
    samples.sort()
    emit(
        "time_travel",
        events=events,
        samples=len(samples),
        p50_ms=round(samples[len(samples) // 2][0], 1),
        max_ms=round(samples[-1][0], 1),
        max_events_replayed=max(read for _, read in samples),
    )


def measure_verify(url: str, doc_id: str, events: int) -> None:
    """``collab replay --verify`` in its own process: events/s and peak memory."""
    env = {**os.environ, "COLLAB_DATABASE_URL": url}
    command = [str(REPO_ROOT / ".venv/bin/collab"), "replay", doc_id, "--verify"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO_ROOT
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    output = process.stdout.read().decode() if process.stdout else ""
    emit(
        "verify",
        events=events,
        ok=status == 0 and output.startswith("OK"),
        seconds=round(elapsed, 2),
        events_per_second=round(events / elapsed),
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
    )


async def main(events: int, commit_batch: int, sizes_only: bool) -> None:
    """Build the log on a fresh schema and measure it."""
    async with postgres_database() as url:
        seeded = await seed_document(url)
        started = time.perf_counter()
        writer = seeded.users["writer"].id
        await build_log(url, seeded.doc_id, writer, keystrokes(events), commit_batch)
        emit("built", events=events, seconds=round(time.perf_counter() - started, 1))
        await measure_sizes(url, events, commit_batch)
        if sizes_only:
            return
        await measure_time_travel(url, seeded.doc_id, events)
        await asyncio.to_thread(measure_verify, url, seeded.doc_id, events)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=260_000)
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    parser.add_argument("--batch", type=int, default=COMMIT_BATCH, help="events per commit")
    parser.add_argument("--sizes-only", action="store_true", help="skip time travel and verify")
    args = parser.parse_args()
    asyncio.run(main(20_000 if args.quick else args.events, args.batch, args.sizes_only))
    sys.exit(0)
