"""Writes event logs with whatever ``eventstore`` is importable: run it with an older tree.

Usage: ``python old_log_writer.py DATABASE_URL TREE``. It refuses to run
unless ``eventstore`` is imported from ``TREE``, so a test can be sure the
logs were written by that tree's code (its schema, its appends, its
snapshots). Only APIs that have not changed since the first event log are
used: migrations, ``create_log``, ``EventLog.append``/``append_dated``/
``save_snapshot``.

Two logs: ``long`` (mixed kinds, authors, nodes, metadata and sources, a
third of it imported with older times, snapshots on the way) and ``short``.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, Text

from eventstore import apply_migrations, open_database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.logs import create_log

if TYPE_CHECKING:
    from eventstore.events import EventKind

LOGS = {"long": 600, "short": 10}
SNAPSHOT_EVERY = 250


def keystrokes(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=21)
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(text) // 2, "xyz"[i % 3])
    return updates


def event(seq: int, update: bytes, rng: random.Random) -> NewEvent:
    kinds: list[EventKind] = ["update", "edit"]
    kind = rng.choice(kinds)
    meta = {"note": "ü", "n": seq} if seq % 5 == 0 else None
    source = "ai:x" if seq % 3 == 0 else None
    return NewEvent(
        kind, update, rng.choice([None, "u1", "u2"]), rng.choice(["a", "b"]), meta, source
    )


async def write(url: str) -> None:
    async with open_database(url) as db:
        await apply_migrations(db)
        log = EventLog(db)
        for doc_id, count in LOGS.items():
            rng = random.Random(count)
            updates = keystrokes(count)
            imported = count // 3
            async with db.transaction() as conn:
                await create_log(conn, doc_id)
                dated = [
                    (event(seq, u, rng), 1_600_000_000.0 + rng.random() * 1000)
                    for seq, u in enumerate(updates[:imported], start=1)
                ]
                await log.append_dated(conn, doc_id, dated)
            seq = imported
            while seq < count:  # commits of one to nine events, as a room makes them
                batch = updates[seq : seq + rng.randint(1, 9)]
                events = [event(seq + 1 + i, u, rng) for i, u in enumerate(batch)]
                await log.append(doc_id, events)
                seq += len(batch)
            for seq in range(SNAPSHOT_EVERY, count + 1, SNAPSHOT_EVERY):
                state: Doc[Any] = Doc(client_id=23)
                for update in updates[:seq]:
                    state.apply_update(update)
                await log.save_snapshot(doc_id, seq, state.get_update())


if __name__ == "__main__":
    import eventstore

    url, tree = sys.argv[1], Path(sys.argv[2]).resolve()
    if tree not in Path(eventstore.__file__).resolve().parents:
        sys.exit(f"eventstore comes from {eventstore.__file__}, not from {tree}")
    asyncio.run(write(url))
