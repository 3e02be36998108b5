"""Capacity of the event log: bytes per event, snapshot bytes, time travel, verify.

Usage (from the repository root; needs Postgres)::

    .venv/bin/python -m bench.capacity_log [--events 65000,260000] [--quick] [--batch 50]

Builds one document of keystrokes up to the largest of ``--events`` (seeded
random typing: runs of 5-60 characters at a random place, one backspace in
ten), appended in commits
of ``--batch`` events (50, as a room commits under load; 1 is slow typing,
one commit per keystroke), with a snapshot every 500 events saved the way a
room saves them (the retention policy thins them as it goes). Each time the
document reaches one of ``--events`` it prints one JSON line per figure, each
with an ``events`` key (so the figures of the longest history come last):

* ``log_bytes``: on-disk bytes per event of every table holding events
  (the packed blocks and the tail), with their indexes and TOAST, and each
  table's total;
* ``snapshots``: how many are kept and their total bytes, against the state size
  (the retention policy keeps a number growing with the logarithm of the history);
* ``time_travel``: rebuilding the document (milliseconds, the median of three
  runs each) at random seqs and at the worst cases: for every kept snapshot,
  the seq just before the next one (the longest replay from it), the seq
  before the first snapshot, and the head; the slowest one's seq and replay
  length;
* ``verify``: ``collab replay --verify`` as a separate process, the median of
  three runs: events/s and its peak memory (the process's own ``VmHWM``),
  which should not grow with the history beyond the document itself (``load_peak_rss_mib``: a plain
  ``collab replay`` of the head, i.e. the document and the interpreter).

``--quick`` uses 5,000 and 20,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import tomllib
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
# Each time travel is timed this many times and counts with its median, so a
# moment of contention on a shared machine does not pass for the cost of a seq.
TIME_TRAVEL_REPEATS = 3
VERIFY_REPEATS = 3
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


class LogBuilder:
    """Appends keystrokes to one document as a room would, snapshotting as it goes."""

    def __init__(self, log: EventLog, doc_id: str, author: str, commit_batch: int) -> None:
        self._log = log
        self._doc_id = doc_id
        self._author = author
        self._commit_batch = commit_batch
        self._shadow: Doc[Any] = Doc(client_id=1)
        self._last_snapshot = 0

    async def append(self, updates: list[bytes]) -> None:
        """Append ``updates`` in commits, a snapshot every SNAPSHOT_EVERY events."""
        for start in range(0, len(updates), self._commit_batch):
            batch = updates[start : start + self._commit_batch]
            events = [NewEvent("update", u, self._author, "bench-node-1") for u in batch]
            stored = await self._log.append(self._doc_id, events)
            with self._shadow.transaction():
                for update in batch:
                    self._shadow.apply_update(update)
            if stored[-1].seq - self._last_snapshot >= SNAPSHOT_EVERY:
                state = encode_state(self._shadow)
                await self._log.save_snapshot(self._doc_id, stored[-1].seq, state)
                self._last_snapshot = stored[-1].seq


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


def time_travel_targets(snapshot_seqs: list[int], head: int, rng: random.Random) -> list[int]:
    """Random seqs plus the worst cases: each seq just before a kept snapshot, and the head."""
    worst = [seq - 1 for seq in snapshot_seqs if seq > 1] + [head]
    return [rng.randint(1, head) for _ in range(TIME_TRAVEL_SAMPLES)] + worst


async def measure_time_travel(url: str, doc_id: str, events: int) -> None:
    """Milliseconds to rebuild the document at random seqs and at the worst cases."""
    samples = []
    async with open_database(url) as db:
        log = EventLog(db)
        targets = time_travel_targets(await log.snapshot_seqs(doc_id), events, random.Random(1))
        for at in targets:
            runs, replayed = [], 0
            for _ in range(TIME_TRAVEL_REPEATS):
                started = time.perf_counter()
                replayed = (await rebuild(log, doc_id, at=at)).events_read
                runs.append((time.perf_counter() - started) * 1000)
            samples.append((statistics.median(runs), replayed, at))
    randoms = sorted(ms for ms, _, _ in samples[:TIME_TRAVEL_SAMPLES])
    samples.sort()
    slowest_ms, slowest_read, slowest_at = samples[-1]
    emit(
        "time_travel",
        events=events,
        samples=len(samples),
        repeats=TIME_TRAVEL_REPEATS,
        p50_ms=round(samples[len(samples) // 2][0], 1),
        max_ms=round(slowest_ms, 1),
        max_events_replayed=max(read for _, read, _ in samples),
        random_samples=len(randoms),
        random_p50_ms=round(randoms[len(randoms) // 2], 1),
        worst_case_samples=len(samples) - len(randoms),
        slowest_at_seq=slowest_at,
        slowest_events_replayed=slowest_read,
    )


# Runs the ``collab`` console script's entry point, then reports the process's
# own peak RSS. ``ru_maxrss`` will not do: Linux carries the high-water mark of
# the memory a child had before exec, i.e. a copy of this (large) process, into it.
_PEAK_MARK = "peak-rss-kib="
_CLI_WITH_PEAK = f"""
import sys
from collab.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            print("{_PEAK_MARK}" + line.split()[1], file=sys.stderr)
sys.exit(code)
"""


def run_cli(url: str, *args: str) -> tuple[bool, str, float, float | None]:
    """Run ``collab ARGS`` in its own process: ok, stdout, seconds and peak RSS in MiB."""
    env = {**os.environ, "COLLAB_DATABASE_URL": url}
    command = [str(REPO_ROOT / ".venv/bin/python"), "-c", _CLI_WITH_PEAK, *args]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, cwd=REPO_ROOT, check=False)
    elapsed = time.perf_counter() - started
    peaks = [line for line in done.stderr.decode().split() if line.startswith(_PEAK_MARK)]
    peak = int(peaks[-1].removeprefix(_PEAK_MARK)) / 1024 if peaks else None
    return done.returncode == 0, done.stdout.decode(), elapsed, peak


def installed_packages() -> list[str]:
    """The packages the wheel installs, as ``pyproject.toml`` names them."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as project:
        wheel = tomllib.load(project)["tool"]["hatch"]["build"]["targets"]["wheel"]
    return list(wheel["packages"])


def compile_sources() -> None:
    """Write the bytecode of the project's packages, as installing them does.

    With ``PYTHONDONTWRITEBYTECODE`` set (some machines set it for everything)
    a module whose bytecode is missing or older than its source is compiled
    again by every process that imports it, which a command timed as a process
    would pay on every run; an installed collab never does.
    """
    packages = [str(REPO_ROOT / package) for package in installed_packages()]
    command = [str(REPO_ROOT / ".venv/bin/python"), "-m", "compileall", "-q", *packages]
    subprocess.run(command, capture_output=True, cwd=REPO_ROOT, check=True)


def measure_verify(url: str, doc_id: str, events: int) -> None:
    """``collab replay --verify`` in its own process: events/s and peak memory.

    The median of VERIFY_REPEATS runs, with the project's bytecode written
    first (:func:`compile_sources`), as an installed collab has it. Also the peak
    memory of loading the document at its head (``collab replay``): the part
    of verify's memory that is the document itself.
    """
    compile_sources()
    runs = sorted(
        (run_cli(url, "replay", doc_id, "--verify") for _ in range(VERIFY_REPEATS)),
        key=lambda run: run[2],
    )
    ok = all(passed and output.startswith("OK") for passed, output, _, _ in runs)
    _, _, elapsed, peak = runs[len(runs) // 2]
    _, _, _, document_peak = run_cli(url, "replay", doc_id, "--format", "json")
    emit(
        "verify",
        events=events,
        ok=ok,
        runs=len(runs),
        seconds=round(elapsed, 2),
        seconds_of_each=[round(run[2], 2) for run in runs],
        events_per_second=round(events / elapsed),
        peak_rss_mib=None if peak is None else round(peak, 1),
        load_peak_rss_mib=None if document_peak is None else round(document_peak, 1),
    )


async def main(lengths: list[int], commit_batch: int, sizes_only: bool) -> None:
    """Build the log on a fresh schema and measure it at each of ``lengths``."""
    async with postgres_database() as url:
        seeded = await seed_document(url)
        writer = seeded.users["writer"].id
        updates = keystrokes(max(lengths))
        built, building = 0, 0.0
        async with open_database(url) as db:
            builder = LogBuilder(EventLog(db), seeded.doc_id, writer, commit_batch)
            for events in sorted(set(lengths)):
                started = time.perf_counter()
                await builder.append(updates[built:events])
                built, building = events, building + time.perf_counter() - started
                emit("built", events=events, seconds=round(building, 1))
                await measure_sizes(url, events, commit_batch)
                if sizes_only:
                    continue
                await measure_time_travel(url, seeded.doc_id, events)
                await asyncio.to_thread(measure_verify, url, seeded.doc_id, events)


def event_counts(text: str) -> list[int]:
    """``--events``: one count or a comma-separated list."""
    return [int(part) for part in text.split(",")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events", type=event_counts, default=[65_000, 260_000], help="lengths to measure at"
    )
    parser.add_argument("--quick", action="store_true", help="5,000 and 20,000 events")
    parser.add_argument("--batch", type=int, default=COMMIT_BATCH, help="events per commit")
    parser.add_argument("--sizes-only", action="store_true", help="skip time travel and verify")
    args = parser.parse_args()
    asyncio.run(main([5_000, 20_000] if args.quick else args.events, args.batch, args.sizes_only))
    sys.exit(0)
