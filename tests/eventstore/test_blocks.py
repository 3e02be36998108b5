"""Blocks: packed events read back exactly, on both backends, through every reading call."""

from __future__ import annotations

import asyncio
import random

import pytest

from eventstore import Database
from eventstore.blocks import (
    BLOCK_EVENTS,
    TAIL_SLOTS,
    BlockFormatError,
    decode_body,
    decode_updates,
    encode_body,
)
from eventstore.crdt import text_of
from eventstore.eventlog import EventLog
from eventstore.events import EVENT_KINDS, ChainHasher, NewEvent, canonical_meta, chain_hash
from eventstore.logs import create_log
from eventstore.replay import rebuild
from eventstore.verify import verify_log
from tests.eventstore.test_eventlog import typed

COUNT = 2 * BLOCK_EVENTS + 40


def mixed_events(count: int) -> list[NewEvent]:
    """Every kind, authors, sources and metadata, on real keystroke updates."""
    rng = random.Random(5)
    updates = typed("ab" * (count // 2 + 1))[:count]
    return [
        NewEvent(
            rng.choice(["update", "update", "edit", "merge"]),
            update,
            rng.choice([None, "u1", "ü-2"]),
            rng.choice(["node-a", "node-b"]),
            rng.choice([None, {"from_document_id": "x", "through_seq": 3, "é": [1.5, None]}]),
            rng.choice([None, "ai:x"]),
        )
        for update in updates
    ]


@pytest.fixture
async def log(db: Database) -> EventLog:
    async with db.transaction() as conn:
        await create_log(conn, "d1")
    return EventLog(db)


def test_the_fast_hasher_is_chain_hash() -> None:
    rng = random.Random(1)
    previous = bytes(32)
    expected = []
    fields = []
    for seq, event in enumerate(mixed_events(300), start=1):
        at = rng.choice([1764412345.123456, 100.0, 1e-7, 1e22, 5.0]) + seq
        previous = chain_hash(previous, "dö\u2028", seq, event, at)
        expected.append(previous)
        fields.append(
            (
                event.kind,
                event.update,
                event.author_id,
                event.node_id,
                at,
                canonical_meta(event.meta),
                event.source,
            )
        )
    assert ChainHasher("dö\u2028").hashes(bytes(32), 1, fields) == expected


def test_a_body_round_trips_and_bad_bodies_are_refused() -> None:
    fields = [
        (
            kind,
            bytes([n]) * n,
            None if n % 2 else "a",
            "n",
            n / 3,
            None if n % 3 else '{"a":1}',
            None,
        )
        for n, kind in enumerate(EVENT_KINDS * 5)
    ]
    hashes = [bytes([n]) * 32 for n in range(len(fields))]
    events, prefixes = decode_body(encode_body(fields, hashes))
    assert events == fields
    assert prefixes == [h[:4] for h in hashes]
    assert decode_updates(encode_body(fields, hashes)) == [f[1] for f in fields]
    for decode in (decode_body, decode_updates):
        with pytest.raises(BlockFormatError):
            decode(b"not a block")


async def test_packed_events_read_back_exactly(db: Database, log: EventLog) -> None:
    stored = []
    for event in mixed_events(COUNT):  # one event per commit: slow typing
        stored += await log.append("d1", [event])
    assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 2
    # The tail's rows are reused: two blocks' worth at most, whatever the history.
    assert await db.fetchval("SELECT count(*) FROM doc_events") == TAIL_SLOTS
    assert await log.read("d1") == stored
    assert await log.read("d1", after=250, limit=20) == stored[250:270]
    assert await log.read("d1", after=255, through=257) == stored[255:257]
    assert [e async for e in log.iterate("d1", page=100)] == stored
    assert await log.event("d1", 256) == stored[255]
    assert await log.event("d1", COUNT + 1) is None
    for after, through, page in [(0, None, 5000), (0, None, 100), (250, 300, 7), (300, 513, 256)]:
        pages = [p async for p in log.updates("d1", after=after, through=through, page=page)]
        assert all(pages)
        assert [u for p in pages for u in p] == [e.update for e in stored[after:through]]
    merges = await log.events_of_kind("d1", "merge")
    assert merges == [e for e in stored if e.kind == "merge"]
    result = await verify_log(log, "d1")
    assert result.ok, result.problems
    assert result.events == COUNT


async def test_batches_pack_in_the_callers_transaction_too(db: Database, log: EventLog) -> None:
    updates = typed("x" * COUNT)
    first = await log.append("d1", [NewEvent("update", u, "u", "n") for u in updates[:300]])
    async with db.transaction() as conn:
        rest = await log.append(
            "d1", [NewEvent("update", u, "u", "n") for u in updates[300:]], conn=conn
        )
    assert await db.fetchval("SELECT count(*) FROM doc_event_blocks") == 2
    assert await log.read("d1") == first + rest
    assert text_of((await rebuild(log, "d1", at=260)).doc) == "x" * 260


async def test_seq_at_time_inside_blocks(log: EventLog) -> None:
    stored = []
    for event in mixed_events(COUNT):
        stored += await log.append("d1", [event])
    for target in (stored[0], stored[100], stored[255], stored[256], stored[-1]):
        assert await log.seq_at_time("d1", target.created_at) == target.seq
    assert await log.seq_at_time("d1", stored[0].created_at - 1) == 0


async def test_a_damaged_block_is_a_clear_error(db: Database, log: EventLog) -> None:
    await log.append("d1", [NewEvent("update", u, "u", "n") for u in typed("x" * 300)])
    await db.execute("UPDATE doc_event_blocks SET body = $1", b"garbage")
    with pytest.raises(BlockFormatError, match="the block of events from 1"):
        await log.read("d1")
    with pytest.raises(BlockFormatError, match="the block of events from 1"):
        await rebuild(log, "d1")
    assert [e.seq for e in await log.read("d1", after=256)] == list(range(257, 301))


async def test_two_nodes_appending_across_blocks_stay_gap_free(db: Database, log: EventLog) -> None:
    nodes = [log, EventLog(db)]  # each remembers its own head and packed seq
    updates = typed("y" * (2 * TAIL_SLOTS + 30))

    async def node(index: int) -> None:
        for update in updates[index::2]:
            await nodes[index].append("d1", [NewEvent("update", update, "u", f"n{index}")])

    await asyncio.gather(node(0), node(1))
    stored = await log.read("d1")
    assert [e.seq for e in stored] == list(range(1, len(updates) + 1))
    assert (
        await db.fetchval("SELECT count(*) FROM doc_event_blocks") == len(updates) // BLOCK_EVENTS
    )
    result = await verify_log(log, "d1")
    assert result.ok, result.problems
