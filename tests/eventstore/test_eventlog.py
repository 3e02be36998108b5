"""The event log: seq order, hash chain, snapshots, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pycrdt import Doc, Text

from eventstore import Database
from eventstore.errors import SeqConflictError, UnknownLogError
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.logs import GENESIS_HASH, create_log, delete_logs
from eventstore.replay import document_text, rebuild
from eventstore.verify import verify_log
from tests.eventstore.tampering import tamper


def typed(text: str, client_id: int = 7) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=client_id)
    content = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for char in text:
        content += char
    return updates


def events(updates: list[bytes], author: str = "u1") -> list[NewEvent]:
    return [NewEvent("update", u, author, "node-a") for u in updates]


@pytest.fixture
async def log(db: Database) -> EventLog:
    async with db.transaction() as conn:
        await create_log(conn, "d1")
    return EventLog(db)


async def test_append_numbers_events_from_one(log: EventLog) -> None:
    first = await log.append("d1", events(typed("ab")))
    second = await log.append("d1", events(typed("c", client_id=8)))
    assert [e.seq for e in first + second] == [1, 2, 3]
    head = await log.head("d1")
    assert head.seq == 3
    assert head.hash == second[-1].hash
    assert [e.seq for e in await log.read("d1", after=1)] == [2, 3]
    assert [e.seq for e in await log.read("d1", through=2)] == [1, 2]


async def test_fields_round_trip(log: EventLog) -> None:
    [stored] = await log.append(
        "d1", [NewEvent("fork", b"\x00\x00", None, "n", {"source": "d0", "seq": 4})]
    )
    [read] = await log.read("d1")
    assert read == stored
    assert read.meta == {"source": "d0", "seq": 4}


async def test_hash_chain_links_events(log: EventLog) -> None:
    stored = await log.append("d1", events(typed("hello")))
    assert len({e.hash for e in stored}) == 5
    result = await verify_log(log, "d1")
    assert result.ok, result.problems
    assert result.events == 5


async def test_tampering_is_detected(db: Database, log: EventLog) -> None:
    await log.append("d1", events(typed("hello")))
    await tamper(db, "d1", 3, "author_id", "mallory")
    result = await verify_log(log, "d1")
    assert not result.ok
    assert any("event 3" in p for p in result.problems)


async def test_bad_snapshot_is_detected(log: EventLog) -> None:
    await log.append("d1", events(typed("hello")))
    await log.save_snapshot("d1", 3, (await rebuild(log, "d1", at=2)).doc.get_update())
    result = await verify_log(log, "d1")
    assert result.problems == ["snapshot at 3 differs from the replayed state"]


async def test_expected_head_guards_against_races(log: EventLog) -> None:
    await log.append("d1", events(typed("a")))
    with pytest.raises(SeqConflictError):
        await log.append("d1", events(typed("b", 9)), expected_head=0)


async def test_unknown_log(log: EventLog) -> None:
    with pytest.raises(UnknownLogError):
        await log.append("nope", events(typed("a")))
    with pytest.raises(UnknownLogError):
        await log.head("nope")


async def test_concurrent_appends_are_gap_free(log: EventLog) -> None:
    updates = typed("x" * 60)
    await asyncio.gather(*(log.append("d1", events([u])) for u in updates))
    assert [e.seq for e in await log.read("d1")] == list(range(1, 61))
    assert (await verify_log(log, "d1")).ok


async def test_snapshot_plus_tail_equals_full_replay(log: EventLog) -> None:
    await log.append("d1", events(typed("hello world")))
    at_five = await rebuild(log, "d1", at=5)
    await log.save_snapshot("d1", 5, at_five.doc.get_update())
    with_snapshot = await rebuild(log, "d1")
    without = await rebuild(log, "d1", use_snapshots=False)
    assert with_snapshot.snapshot_seq == 5
    assert with_snapshot.events_read == 6
    assert with_snapshot.doc.get_update() == without.doc.get_update()
    assert (await verify_log(log, "d1")).snapshots_checked == 1


async def test_time_travel(db: Database, log: EventLog) -> None:
    await log.append("d1", events(typed("abc")))
    assert await document_text(db, "d1", at=2) == (2, "ab")
    assert await document_text(db, "d1", at=0) == (0, "")
    assert await document_text(db, "d1", at=99) == (3, "abc")
    assert await log.seq_at_time("d1", 0.0) == 0


async def test_deleting_the_log_removes_events_and_snapshots(db: Database, log: EventLog) -> None:
    await log.append("d1", events(typed("abc" * 100)))  # a block and a tail
    await log.save_snapshot("d1", 2, b"\x00\x00")
    assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 1
    async with db.transaction() as conn:
        await delete_logs(conn, ["d1"])
    assert await db.fetchval("SELECT count(*) FROM doc_events") == 0
    assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 0
    assert await db.fetchval("SELECT count(*) FROM doc_snapshots") == 0


async def test_empty_log_head_is_genesis(log: EventLog) -> None:
    head = await log.head("d1")
    assert (head.seq, head.hash) == (0, GENESIS_HASH)


async def test_appends_after_a_stale_remembered_head_stay_gap_free(db: Database) -> None:
    # Two logs over one database stand for two nodes: each remembers the head
    # it last wrote, and the other's appends make that memory stale.
    async with db.transaction() as conn:
        await create_log(conn, "d1")
    first, second = EventLog(db), EventLog(db)
    updates = typed("abcdef")
    await first.append("d1", events(updates[:1]))
    await second.append("d1", events(updates[1:2]))
    await first.append("d1", events(updates[2:4]))  # first's head is stale here
    await second.append("d1", events(updates[4:5]))  # and second's
    await second.append("d1", events(updates[5:]))  # second's is current
    stored = await first.read("d1")
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    assert [e.update for e in stored] == updates
    result = await verify_log(first, "d1")
    assert result.ok, result.problems
    assert (await first.head("d1")).hash == stored[-1].hash


async def test_remembered_head_still_honours_expected_head(log: EventLog) -> None:
    await log.append("d1", events(typed("a")))
    with pytest.raises(SeqConflictError):
        await log.append("d1", events(typed("b", client_id=8)), expected_head=0)
    [stored] = await log.append("d1", events(typed("c", client_id=9)), expected_head=1)
    assert stored.seq == 2


async def test_append_inside_a_rolled_back_transaction_is_forgotten(
    db: Database, log: EventLog
) -> None:
    await log.append("d1", events(typed("a")))

    class AbortError(Exception):
        pass

    with pytest.raises(AbortError):
        async with db.transaction() as conn:
            await log.append("d1", events(typed("b", client_id=8)), conn=conn)
            raise AbortError
    [stored] = await log.append("d1", events(typed("c", client_id=9)))
    assert stored.seq == 2
    result = await verify_log(log, "d1")
    assert result.ok, result.problems
