"""``verify_log`` streams: pages of events, one snapshot at a time, hashes in parallel."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pycrdt import Doc, Text

from eventstore import Database
from eventstore.blocks import BLOCK_EVENTS, Block, PackedBlock
from eventstore.crdt import encode_state
from eventstore.eventlog import EventLog, Snapshot
from eventstore.events import NewEvent
from eventstore.hashcheck import broken_links, default_workers, start_method
from eventstore.logs import GENESIS_HASH, create_log
from eventstore.verify import PAGE_SIZE, verify_log
from tests.eventstore.tampering import tamper

EVENTS = 2 * PAGE_SIZE + 345


class WatchedLog(EventLog):
    """The real log, recording how much of it is held at once."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.largest_read = 0
        self.snapshots_loaded = 0

    async def packed_segments(
        self, doc_id: str, *, after: int = 0, through: int | None = None, page: int = 5000
    ) -> AsyncIterator[list[Block | PackedBlock]]:
        async for batch in super().packed_segments(doc_id, after=after, through=through, page=page):
            held = sum(b.last_seq - b.first_seq + 1 for b in batch)
            self.largest_read = max(self.largest_read, held)
            yield batch

    async def snapshots(self, doc_id: str) -> list[Snapshot]:
        raise AssertionError("verify must not load every snapshot at once")

    async def snapshot_at(self, doc_id: str, seq: int) -> Snapshot | None:
        self.snapshots_loaded += 1
        return await super().snapshot_at(doc_id, seq)


async def _long_log(db: Database, doc_id: str) -> list[int]:
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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 1, 2])
async def test_verify_reads_pages_and_one_snapshot_at_a_time(db: Database, workers: int) -> None:
    kept = await _long_log(db, "long")
    log = WatchedLog(db)
    result = await verify_log(log, "long", hash_workers=workers)
    assert result.ok, result.problems
    assert result.events == EVENTS
    assert result.snapshots_checked == len(kept) == log.snapshots_loaded
    # A page may start at the block holding its first wanted event.
    assert PAGE_SIZE <= log.largest_read < PAGE_SIZE + BLOCK_EVENTS


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 1, 2])
async def test_tampering_found_in_any_page(db: Database, workers: int) -> None:
    await _long_log(db, "long")
    for seq in (3, PAGE_SIZE + 1, EVENTS):
        await tamper(db, "long", seq, "node_id", "forged")
    result = await verify_log(EventLog(db), "long", hash_workers=workers)
    assert result.problems == [
        f"event {seq}: hash does not follow the chain" for seq in (3, PAGE_SIZE + 1, EVENTS)
    ]


async def test_progress_reaches_the_head(db: Database) -> None:
    await _long_log(db, "long")
    seen: list[tuple[int, int]] = []
    await verify_log(EventLog(db), "long", lambda seq, total: seen.append((seq, total)))
    assert seen[-1] == (EVENTS, EVENTS)
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)


def test_broken_links_checks_each_link_on_its_own() -> None:
    assert broken_links(GENESIS_HASH, []) == []


@pytest.mark.parametrize(
    ("events", "cores", "workers"),
    [(9_999, 8, 0), (10_000, 1, 0), (10_000, 2, 1), (260_000, 3, 1), (260_000, 4, 2)],
)
def test_hash_workers_follow_the_log_and_the_cores(events: int, cores: int, workers: int) -> None:
    assert default_workers(events, cores) == workers


def test_workers_are_forked_only_while_no_other_thread_runs() -> None:
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    alone = start_method().get_start_method()
    thread = threading.Thread(target=hold)
    thread.start()
    try:
        started.wait(10)
        assert start_method().get_start_method() == "forkserver"
    finally:
        release.set()
        thread.join()
    assert alone == ("fork" if threading.active_count() == 1 else "forkserver")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 1])
async def test_an_update_that_does_not_decode_is_named(db: Database, workers: int) -> None:
    await _long_log(db, "long")
    bad = PAGE_SIZE + 7
    await tamper(db, "long", bad, "payload", b"\xff\xff\xff\xff")
    result = await verify_log(EventLog(db), "long", hash_workers=workers)
    assert result.problems[0].startswith(f"event {bad}: update does not decode (")
    assert f"event {bad}: hash does not follow the chain" in result.problems
    assert result.events == EVENTS


@pytest.mark.timeout(120)
async def test_a_missing_block_is_named(db: Database) -> None:
    await _long_log(db, "long")
    first = PAGE_SIZE - PAGE_SIZE % BLOCK_EVENTS + 1
    await db.execute(
        "DELETE FROM doc_event_blocks WHERE doc_id = $1 AND first_seq = $2", "long", first
    )
    result = await verify_log(EventLog(db), "long", hash_workers=0)
    assert result.problems[0] == f"seq {first} is missing (found {first + BLOCK_EVENTS})"
    assert result.events == EVENTS - BLOCK_EVENTS
    assert f"head says seq {EVENTS} but the log has {EVENTS - BLOCK_EVENTS} events" in (
        result.problems
    )


async def test_verify_trusts_no_snapshot_to_stand_for_the_replay(db: Database) -> None:
    """An update with a clock gap waits aside in the replay, and in no encoded state.

    A room reloaded from the snapshot taken while it waited loses it, and its
    later snapshots miss what it adds once the gap is filled: only a replay
    from the first event, not one from a stored snapshot, sees that.
    """
    async with db.transaction() as conn:
        await create_log(conn, "gap")
    writer: Doc[Any] = Doc(client_id=7)
    text = writer.get("content", type=Text)
    updates: list[bytes] = []
    writer.observe(lambda event: updates.append(event.update))
    text.insert(0, "abc")
    text.insert(3, "def")
    filler, gapped = updates
    log = EventLog(db)
    await log.append("gap", [NewEvent("update", gapped, "a", "n")])
    waiting: Doc[Any] = Doc()
    waiting.apply_update(gapped)
    await log.save_snapshot("gap", 1, encode_state(waiting))
    reloaded: Doc[Any] = Doc()
    reloaded.apply_update(encode_state(waiting))
    reloaded.apply_update(filler)
    await log.append("gap", [NewEvent("update", filler, "a", "n")])
    await log.save_snapshot("gap", 2, encode_state(reloaded))
    assert str(reloaded.get("content", type=Text)) == "abc"
    result = await verify_log(log, "gap")
    assert result.problems == ["snapshot at 2 differs from the replayed state"]
