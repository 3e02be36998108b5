"""Snapshots make loading cheap; they never replace events."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from pycrdt import Doc, Text
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from collab.realtime.keys import ROOMS
from collab.realtime.relay import LocalRelay
from collab.realtime.room import Room, RoomConfig
from eventstore import Database
from eventstore.crdt import text_of
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent
from eventstore.keys import DATABASE
from eventstore.logs import create_log
from eventstore.replay import rebuild
from tests.realtime.pyclient import connect
from tests.realtime.seed import seed

EVENTS = 100_000
EVERY = 500


def typing_updates(count: int) -> list[bytes]:
    doc: Doc[Any] = Doc(client_id=4242)
    text = doc.get("content", type=Text)
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(len(text) if i % 7 else 0, "abcdefghij"[i % 10])
    doc.unobserve(subscription)
    return updates


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_cold_load_of_100k_events_reads_one_snapshot_and_a_short_tail(db: Database) -> None:
    async with db.transaction() as conn:
        await create_log(conn, "big")
    log = EventLog(db)
    shadow: Doc[Any] = Doc()
    updates = typing_updates(EVENTS + 123)
    for start in range(0, len(updates), EVERY):
        batch = updates[start : start + EVERY]
        stored = await log.append("big", [NewEvent("update", u, "u1", "n1") for u in batch])
        for update in batch:
            shadow.apply_update(update)
        if len(batch) == EVERY:  # as a room does every EVERY events
            await log.save_snapshot("big", stored[-1].seq, shadow.get_update())

    room = await Room.load("big", "p", log=log, relay=LocalRelay(), config=RoomConfig(node_id="n"))
    loaded = await rebuild(log, "big")
    assert loaded.snapshot_seq == EVENTS
    assert loaded.events_read == 123
    assert room.seq == EVENTS + 123
    assert text_of(room.doc) == text_of(shadow)
    # The events alone rebuild the same text: snapshots are only an optimisation.
    from_events = await rebuild(log, "big", at=EVENTS // 2, use_snapshots=False)
    assert from_events.events_read == EVENTS // 2
    assert text_of(from_events.doc) == text_of((await rebuild(log, "big", at=EVENTS // 2)).doc)


async def test_room_snapshots_every_n_events_and_on_unload(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    app = create_app(dataclasses.replace(settings, snapshot_every=20, room_grace_seconds=0.05))
    client = await aiohttp_client(app)
    seeded = await seed(app, {"owner": Role.OWNER})
    log = EventLog(app[DATABASE])
    async with connect(
        client, f"/ws/{seeded.doc_id}?token={seeded.tokens['owner']}", client_id=1
    ) as a:
        for i in range(45):
            a.text += str(i % 10)
            await asyncio.sleep(0.002)
        room = app[ROOMS].get(seeded.doc_id)
        assert room is not None
        await room.flush()
        during = [s.seq for s in await log.snapshots(seeded.doc_id)]
    assert during
    assert all(seq >= 20 for seq in during)
    # After the grace period the room unloads with a final snapshot at the head.
    head = (await log.head(seeded.doc_id)).seq
    assert head == 45
    assert head == len(await log.read(seeded.doc_id))
    async with asyncio.timeout(5):
        while app[ROOMS].get(seeded.doc_id) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        while not await _snapshot_at(log, seeded.doc_id, head):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _snapshot_at(log: EventLog, doc_id: str, seq: int) -> bool:
    snapshot = await log.latest_snapshot(doc_id)
    return snapshot is not None and snapshot.seq == seq
