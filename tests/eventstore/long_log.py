"""A log of a little over two pages, with snapshots, and a log that records what is read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pycrdt import Doc, Text

from eventstore import Database
from eventstore.blocks import Block, PackedBlock
from eventstore.crdt import encode_state
from eventstore.eventlog import EventLog, Snapshot
from eventstore.events import NewEvent
from eventstore.logs import create_log
from eventstore.verify import PAGE_SIZE

EVENTS = 2 * PAGE_SIZE + 345


class WatchedLog(EventLog):
    """The real log, recording how much of it is held at once."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads_after: list[int] = []
        self.largest_read = 0
        self.snapshots_loaded = 0

    async def packed_segments(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 5000
    ) -> AsyncIterator[list[Block | PackedBlock]]:
        self.reads_after.append(after)
        async for batch in super().packed_segments(doc_id, after=after, through=through, page=page):
            held = sum(b.last_seq - b.first_seq + 1 for b in batch)
            self.largest_read = max(self.largest_read, held)
            yield batch

    async def snapshots(self, doc_id: str) -> list[Snapshot]:
        raise AssertionError("verify must not load every snapshot at once")

    async def snapshot_at(self, doc_id: str, seq: int) -> Snapshot | None:
        self.snapshots_loaded += 1
        return await super().snapshot_at(doc_id, seq)


async def long_log(db: Database, doc_id: str) -> list[int]:
    """EVENTS typed events, a snapshot after every thousand; the seqs of those kept."""
    async with db.transaction() as conn:
        await create_log(conn, doc_id)
    log = EventLog(db)
    doc: Doc[Any] = Doc(client_id=5)
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    shadow: Doc[Any] = Doc(client_id=6)
    for i in range(EVENTS):
        text.insert(len(text) // 3, "xyz"[i % 3])
    for start in range(0, EVENTS, 1000):
        chunk = updates[start : start + 1000]
        await log.append(doc_id, [NewEvent("update", u, "a", "n") for u in chunk])
        for update in chunk:
            shadow.apply_update(update)
        await log.save_snapshot(doc_id, start + len(chunk), encode_state(shadow))
    return await log.snapshot_seqs(doc_id)
