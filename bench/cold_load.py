"""Cold load of a long document: newest snapshot plus tail vs the events alone.

Usage (from the repository root; Postgres is optional)::

    .venv/bin/python -m bench.cold_load [--events 100000] [--tail 250] [--repeat 3]

Builds a log of ``--events`` real edits (the ``rustcode`` trace from
the repository's traces/ (or ``$COLLAB_TRACES_DIR``), replayed again after its own end
until there are enough; seeded random typing when the traces are absent), one
Yjs update per event, plus one snapshot ``--tail`` events before the head (a
node snapshots every 500 events, so 250 is the average tail). Then it times
``eventstore.replay.rebuild`` -- what a node does when the first client opens
the document -- with ``use_snapshots=True`` and ``False``, on SQLite and on
Postgres, and checks both give the same text. The database connection is open
and the OS page cache warm: this is the cost of reading and applying the log,
not of a cold disk.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import string
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Text, TransactionEvent

from bench.common import (
    BenchSkipError,
    Patch,
    TraceText,
    banner,
    fmt,
    load_trace,
    postgres_database,
    run_part,
    seed_document,
    sqlite_database,
    table,
)
from eventstore import open_database
from eventstore.crdt import text_of
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.replay import Rebuilt, rebuild

_APPEND_BATCH = 1000
_HEADERS = ("database", "load from", "events read", "median s", "min s", "max s", "text ok")


@dataclass(frozen=True, slots=True)
class History:
    """The updates of a document, a snapshot ``tail`` events before the end, and its text."""

    source: str
    updates: list[bytes]
    snapshot_seq: int
    snapshot: bytes
    text: str


EditSource = Callable[[TraceText], Iterator[tuple[Patch, ...]]]


def _trace_source() -> tuple[str, EditSource]:
    """The rustcode trace's transactions, again and again, each copy after the last.

    Raises:
        BenchSkipError: the trace is not there.
    """
    trace = load_trace("rustcode")
    if trace.start:
        raise BenchSkipError("the rustcode trace does not start empty")

    def copies(text: TraceText) -> Iterator[tuple[Patch, ...]]:
        while True:
            offset = text.length  # a copy only ever edits what it wrote itself
            for patches in trace.txns:
                yield tuple((at + offset, deleted, inserted) for at, deleted, inserted in patches)

    return f"trace rustcode ({len(trace.txns):,} transactions, replayed end to end)", copies


def _random_edits(text: TraceText) -> Iterator[tuple[Patch, ...]]:
    """Seeded random typing: mostly one character, sometimes a deletion."""
    rng = random.Random(7)
    while True:
        length = text.length
        if length > 10 and rng.random() < 0.15:
            yield ((rng.randrange(length - 5), rng.randint(1, 5), ""),)
        else:
            yield ((rng.randint(0, length), 0, rng.choice(string.ascii_lowercase + " \n")),)


def _edit_source() -> tuple[str, EditSource]:
    try:
        return _trace_source()
    except BenchSkipError as exc:
        print(f"cold_load: {exc}; using seeded random typing instead\n")
        return "seeded random typing", _random_edits


def _history(events: int, tail: int, source: str, edit_source: EditSource) -> History:
    doc: Doc[Any] = Doc(client_id=424242)
    text = TraceText(doc.get("content", type=Text))
    updates: list[bytes] = []

    def capture(event: TransactionEvent) -> None:
        updates.append(event.update)

    subscription = doc.observe(capture)
    edits = edit_source(text)
    snapshot = b""
    while len(updates) < events:
        with doc.transaction():
            text.apply(next(edits))
        if len(updates) == events - tail and not snapshot:
            snapshot = doc.get_update()
    doc.unobserve(subscription)
    return History(source, updates, events - tail, snapshot, str(text.text))


async def _fill(url: str, history: History) -> tuple[str, float]:
    """Write the history into a new document; returns its id and the seconds it took."""
    seeded = await seed_document(url)
    doc_id, author = seeded.doc_id, seeded.users["writer"].id
    started = time.perf_counter()
    async with open_database(url) as db:
        log = EventLog(db)
        for first in range(0, len(history.updates), _APPEND_BATCH):
            batch = history.updates[first : first + _APPEND_BATCH]
            await log.append(doc_id, [NewEvent("update", u, author, "bench") for u in batch])
        await log.save_snapshot(doc_id, history.snapshot_seq, history.snapshot)
    return doc_id, time.perf_counter() - started


async def _time_loads(
    url: str, doc_id: str, *, use_snapshots: bool, repeat: int
) -> tuple[list[float], Rebuilt]:
    times: list[float] = []
    loads: list[Rebuilt] = []
    async with open_database(url) as db:
        log = EventLog(db)
        for _ in range(repeat):
            started = time.perf_counter()
            loads.append(await rebuild(log, doc_id, use_snapshots=use_snapshots))
            times.append(time.perf_counter() - started)
    return times, loads[-1]


async def _engine(
    name: str,
    database: Callable[[], AbstractAsyncContextManager[str]],
    history: History,
    repeat: int,
    rows: list[list[str]],
) -> None:
    async with database() as url:
        doc_id, fill_seconds = await _fill(url, history)
        print(f"{name}: wrote {len(history.updates):,} events in {fill_seconds:.1f} s")
        for use_snapshots in (True, False):
            times, rebuilt = await _time_loads(
                url, doc_id, use_snapshots=use_snapshots, repeat=repeat
            )
            rows.append(_row(name, history, times, rebuilt))


def _row(name: str, history: History, times: list[float], rebuilt: Rebuilt) -> list[str]:
    mode = f"snapshot @{rebuilt.snapshot_seq:,} + tail" if rebuilt.snapshot_seq else "events only"
    return [
        name,
        mode,
        f"{rebuilt.events_read:,}",
        fmt(statistics.median(times), 3),
        fmt(min(times), 3),
        fmt(max(times), 3),
        "yes" if text_of(rebuilt.doc) == history.text else "NO",
    ]


_DATABASES: dict[str, Callable[[], AbstractAsyncContextManager[str]]] = {
    "SQLite": sqlite_database,
    "Postgres": postgres_database,
}


async def _main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    history = _history(args.events, args.tail, *_edit_source())
    generated = time.perf_counter() - started
    banner(
        f"cold load: {args.events:,} events, snapshot {args.tail} events before the head",
        [
            f"edits: {history.source}, generated in {generated:.1f} s",
            f"text {len(history.text):,} chars; updates {sum(map(len, history.updates)):,} bytes;"
            f" snapshot {len(history.snapshot):,} bytes",
            f"each load timed {args.repeat} times on an open connection (warm page cache)",
        ],
    )
    rows: list[list[str]] = []
    for name, database in _DATABASES.items():
        await run_part(name, functools.partial(_engine, name, database, history, args.repeat, rows))
    if rows:
        print()
        print(table(_HEADERS, rows))


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the log")
    parser.add_argument("--tail", type=int, default=250, help="events after the snapshot")
    parser.add_argument("--repeat", type=int, default=3, help="loads timed per mode")
    args = parser.parse_args()
    if not 0 < args.tail < args.events or args.repeat < 1:
        parser.error("need 0 < --tail < --events and --repeat >= 1")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
