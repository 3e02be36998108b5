"""A room fed relay messages late, twice, out of order or not at all still
ends exactly at the log's state, applying events strictly in seq order."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from collab.realtime.relay import LocalRelay, UpdateCommitted
from collab.realtime.room import Room, RoomConfig
from eventstore import Database
from eventstore.crdt import text_of
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent, StoredEvent
from eventstore.logs import create_log


async def other_node_types(log: EventLog, text: str) -> list[StoredEvent]:
    """Another node's client types ``text``, one committed event per key."""
    doc: Doc[Any] = Doc(client_id=99)
    content = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for char in text:
        content += char
    return await log.append("d", [NewEvent("update", u, "u", "node-b") for u in updates])


async def open_room(db: Database) -> tuple[Room, EventLog]:
    async with db.transaction() as conn:
        await create_log(conn, "d")
    log = EventLog(db)
    room = await Room.load("d", "p", log=log, relay=LocalRelay(), config=RoomConfig(node_id="a"))
    return room, log


def relayed(event: StoredEvent) -> UpdateCommitted:
    return UpdateCommitted("node-b", "d", event.seq, event.update)


async def test_out_of_order_messages_are_repaired_from_the_log(db: Database) -> None:
    room, log = await open_room(db)
    events = await other_node_types(log, "PQRS")
    # R (seq 3) arrives first: the room reads 1..3 from the log in order.
    await room.relayed_update(relayed(events[2]))
    assert room.seq == 3
    assert text_of(room.doc) == "PQR"
    # Late and duplicate messages change nothing.
    for event in (events[0], events[1], events[2]):
        await room.relayed_update(relayed(event))
    assert text_of(room.doc) == "PQR"
    await room.relayed_update(relayed(events[3]))
    assert (room.seq, text_of(room.doc)) == (4, "PQRS")


async def test_lost_messages_are_caught_by_a_head_check(db: Database) -> None:
    room, log = await open_room(db)
    await other_node_types(log, "hello")  # no message reaches the room at all
    assert room.seq == 0
    assert await room.catch_up() == 5
    assert (room.seq, text_of(room.doc)) == (5, "hello")


async def test_own_events_ahead_of_a_gap_are_not_applied_twice(db: Database) -> None:
    room, log = await open_room(db)
    theirs = await other_node_types(log, "ab")
    # Our own commit lands after theirs; the room learns of seq 3 before 1 and 2.
    room.watermark.mark(3)  # as _after_commit does for our own event
    assert room.seq == 0
    await room.relayed_update(relayed(theirs[1]))
    # 1 and 2 are read from the log; 3 (ours, already in the doc) closes the gap.
    assert room.seq == 3
    assert text_of(room.doc) == "ab"
