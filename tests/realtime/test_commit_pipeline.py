"""The commit pipeline's shape: adaptive group commit, and the WebSocket's framing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from collab.realtime.relay import LocalRelay
from collab.realtime.room import Room, RoomConfig
from eventstore import Database
from eventstore.eventlog import EventLog
from eventstore.events import NewEvent, StoredEvent
from eventstore.logs import create_log
from eventstore.replay import document_text
from tests.conftest import Client
from tests.realtime.seed import Seeded, ws_path


class GatedLog(EventLog):
    """The real log, but each append waits for ``gate`` and records its size."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.batches: list[int] = []

    async def append(
        self, doc_id: str, events: Sequence[NewEvent], **kwargs: object
    ) -> list[StoredEvent]:
        self.entered.set()
        await self.gate.wait()
        self.batches.append(len(events))
        return await super().append(doc_id, events)


async def _room(db: Database, log: EventLog, window: float = 0.0) -> Room:
    async with db.transaction() as conn:
        await create_log(conn, "doc-pipeline")
    config = RoomConfig(node_id="n1", commit_window=window)
    return await Room.load("doc-pipeline", "p1", log=log, relay=LocalRelay(), config=config)


async def test_idle_room_commits_at_once_and_load_forms_the_next_group(db: Database) -> None:
    log = GatedLog(db)
    room = await _room(db, log)
    first = asyncio.create_task(room.restore("a", "u1"))
    async with asyncio.timeout(5):
        await log.entered.wait()  # the first commit started with one event, no waiting
    # Everything arriving while that commit is in flight joins the next group.
    later = [asyncio.create_task(room.restore(text, "u1")) for text in ("ab", "abc", "abcd")]
    await asyncio.sleep(0)
    log.gate.set()
    async with asyncio.timeout(5):
        seqs = await asyncio.gather(first, *later)
    assert seqs == [1, 2, 3, 4]
    assert log.batches == [1, 3]
    assert await document_text(db, "doc-pipeline") == (4, "abcd")


async def test_a_configured_window_still_commits_everything(db: Database) -> None:
    log = GatedLog(db)
    log.gate.set()
    room = await _room(db, log, window=0.005)
    async with asyncio.timeout(5):
        seqs = await asyncio.gather(*(room.restore(t, "u1") for t in ("x", "xy", "xyz")))
    assert sorted(seqs) == [1, 2, 3]
    assert sum(log.batches) == 3
    assert await document_text(db, "doc-pipeline") == (3, "xyz")


async def test_permessage_deflate_is_declined(client: Client, seeded: Seeded) -> None:
    # Yjs updates are small: compressing them costs more CPU than it saves.
    ws = await client.ws_connect(ws_path(seeded, "owner"), compress=15)
    try:
        assert ws.compress == 0
        extensions = ws._response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" not in extensions
    finally:
        await ws.close()


async def test_a_client_without_deflate_still_syncs(client: Client, seeded: Seeded) -> None:
    ws = await client.ws_connect(ws_path(seeded, "owner"), compress=0)
    try:
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.BINARY  # sync step 1 from the server
    finally:
        await ws.close()
