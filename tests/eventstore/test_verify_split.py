"""Verify in two parts: the worker replays the start, this process the rest from a snapshot."""

from __future__ import annotations

import pytest

from eventstore import Database
from eventstore.eventlog import EventLog
from eventstore.hashcheck import ChainChecker
from eventstore.verify import PAGE_SIZE, verify_log
from eventstore.verify_split import _REPLAYS_HERE, replay_page_here, split_point
from tests.eventstore.long_log import EVENTS, WatchedLog, long_log
from tests.eventstore.tampering import tamper

_OVERWRITE = "UPDATE doc_snapshots SET state = $3 WHERE doc_id = $1 AND seq = $2"


@pytest.mark.parametrize(
    ("seqs", "head", "split"),
    [
        ([1000, 3000, 5000, 9000], 10_000, 3000),
        ([], 10_000, None),
        ([10_000], 10_000, None),
        ([0, 12_000], 10_000, None),
        ([9000], 10_000, 9000),
    ],
)
def test_the_cut_is_the_snapshot_nearest_a_quarter(
    seqs: list[int], head: int, split: int | None
) -> None:
    assert split_point(seqs, head) == split


@pytest.mark.timeout(120)
async def test_the_rest_is_replayed_from_the_snapshot_at_the_cut(db: Database) -> None:
    kept = await long_log(db, "long")
    log = WatchedLog(db)
    seen: list[tuple[int, int]] = []
    result = await verify_log(log, "long", lambda *done: seen.append(done), hash_workers=1)
    assert result.ok, result.problems
    assert result.events == EVENTS
    assert result.snapshots_checked == len(kept) == log.snapshots_loaded
    assert sorted(log.reads_after) == [0, split_point(kept, EVENTS)]
    assert seen[-1] == (EVENTS, EVENTS)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


async def _verify_both_ways(db: Database) -> list[str]:
    in_order = await verify_log(EventLog(db), "long", hash_workers=0)
    in_two = await verify_log(EventLog(db), "long", hash_workers=1)
    assert in_two == in_order
    assert in_two.problems
    return in_two.problems


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["before", "at", "after"])
async def test_a_wrong_snapshot_is_reported_as_in_order(db: Database, where: str) -> None:
    kept = await long_log(db, "long")
    split = split_point(kept, EVENTS)
    assert split is not None
    index = kept.index(split) + {"before": -1, "at": 0, "after": 1}[where]
    wrong = kept[index]
    other = await EventLog(db).snapshot_at("long", kept[index - 1] if index else kept[1])
    assert other is not None
    await db.execute(_OVERWRITE, "long", wrong, other.state)
    assert await _verify_both_ways(db) == [f"snapshot at {wrong} differs from the replayed state"]


@pytest.mark.timeout(120)
async def test_an_unreadable_snapshot_at_the_cut_is_reported_as_in_order(db: Database) -> None:
    kept = await long_log(db, "long")
    split = split_point(kept, EVENTS)
    await db.execute(_OVERWRITE, "long", split, b"\xff\xff\xff\xff")
    assert await _verify_both_ways(db) == [f"snapshot at {split} does not decode"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seq", [3, PAGE_SIZE + 1, EVENTS])
async def test_a_broken_link_in_either_part_is_reported_as_in_order(db: Database, seq: int) -> None:
    await long_log(db, "long")
    await tamper(db, "long", seq, "node_id", "forged")
    assert await _verify_both_ways(db) == [f"event {seq}: hash does not follow the chain"]


@pytest.mark.timeout(120)
async def test_the_workers_replay_carries_on_from_page_to_page(db: Database) -> None:
    kept = await long_log(db, "long")
    through = kept[-1]
    pages = [page async for page in EventLog(db).packed_segments("long", through=through)]
    assert len(pages) >= 2
    done = [replay_page_here("carry-on", kept, through, page, {}) for page in pages]
    assert sum(page.events for page in done) == through
    assert [page.problems for page in done] == [[]] * len(pages)
    assert sum(page.snapshots_checked for page in done) == 0  # none handed over: pruned
    assert _REPLAYS_HERE.pop("carry-on").expected_seq == through + 1


async def test_calls_go_to_a_pool_of_exactly_one_worker() -> None:
    async with ChainChecker(0) as inline:
        with pytest.raises(RuntimeError):
            await inline.call(len, [1])
    async with ChainChecker(2) as pool:
        with pytest.raises(RuntimeError):
            await pool.call(len, [1])
    async with ChainChecker(1) as worker:
        assert await worker.call(len, [1, 2]) == 2
