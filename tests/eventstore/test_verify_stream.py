"""``verify_log`` streams: pages of events, one snapshot at a time, hashes in parallel."""

from __future__ import annotations

import threading

import pytest

from eventstore import Database
from eventstore.blocks import BLOCK_EVENTS
from eventstore.eventlog import EventLog
from eventstore.hashcheck import broken_links, default_workers, start_method
from eventstore.logs import GENESIS_HASH
from eventstore.verify import PAGE_SIZE, verify_log
from tests.eventstore.long_log import EVENTS, WatchedLog, long_log
from tests.eventstore.tampering import tamper


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 1, 2])
async def test_verify_reads_pages_and_one_snapshot_at_a_time(db: Database, workers: int) -> None:
    kept = await long_log(db, "long")
    log = WatchedLog(db)
    result = await verify_log(log, "long", hash_workers=workers)
    assert result.ok, result.problems
    assert result.events == EVENTS
    assert result.snapshots_checked == len(kept) == log.snapshots_loaded
    # A page may start at the block holding its first wanted event and end
    # with the block holding its last (a read from a snapshot's seq does both).
    assert PAGE_SIZE <= log.largest_read < PAGE_SIZE + 2 * BLOCK_EVENTS


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [0, 1, 2])
async def test_tampering_found_in_any_page(db: Database, workers: int) -> None:
    await long_log(db, "long")
    for seq in (3, PAGE_SIZE + 1, EVENTS):
        await tamper(db, "long", seq, "node_id", "forged")
    result = await verify_log(EventLog(db), "long", hash_workers=workers)
    assert result.problems == [
        f"event {seq}: hash does not follow the chain" for seq in (3, PAGE_SIZE + 1, EVENTS)
    ]


async def test_progress_reaches_the_head(db: Database) -> None:
    await long_log(db, "long")
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
    await long_log(db, "long")
    bad = PAGE_SIZE + 7
    await tamper(db, "long", bad, "payload", b"\xff\xff\xff\xff")
    result = await verify_log(EventLog(db), "long", hash_workers=workers)
    assert result.problems[0].startswith(f"event {bad}: update does not decode (")
    assert f"event {bad}: hash does not follow the chain" in result.problems
    assert result.events == EVENTS


@pytest.mark.timeout(120)
async def test_a_missing_block_is_named(db: Database) -> None:
    await long_log(db, "long")
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
