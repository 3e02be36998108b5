"""The commit pipeline's shape: adaptive group commit, and the WebSocket's framing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from auth.access import Role
from auth.models import User
from collab.realtime.peer import Peer, PeerLimits
from collab.realtime.protocol import SyncMessage, SyncType
from collab.realtime.relay import LocalRelay
from collab.realtime.room import OverloadedError, Room, RoomConfig
from collab.realtime.websocket import WebSocketConnection
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


async def _room(db: Database, log: EventLog, window: float = 0.0, **config: float) -> Room:
    async with db.transaction() as conn:
        await create_log(conn, "doc-pipeline")
    settings = RoomConfig(node_id="n1", commit_window=window, **config)  # type: ignore[arg-type]
    return await Room.load("doc-pipeline", "p1", log=log, relay=LocalRelay(), config=settings)


def _typed(text: str) -> list[SyncMessage]:
    doc: Doc[Any] = Doc(client_id=7)
    content = doc.get("content", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for char in text:
        content += char
    return [SyncMessage(SyncType.UPDATE, update) for update in updates]


def _writer() -> Peer:
    # Never started: what the room sends it just waits in its queue.
    user = User("u1", "u1@example.com", "U1", 0.0)
    return Peer(WebSocketConnection(1 << 20), user, Role.EDITOR, PeerLimits(rate=1e6, burst=1e6))


async def test_a_writer_far_ahead_of_the_committer_waits_instead_of_being_refused(
    db: Database,
) -> None:
    log = GatedLog(db)
    room = await _room(db, log, max_pending=4)  # writers wait from 2 uncommitted on
    writer = _writer()
    messages = _typed("abcde")
    await room.receive(writer, messages[0])
    async with asyncio.timeout(5):
        await log.entered.wait()  # the first commit is stuck at the gate
    for message in messages[1:3]:
        await room.receive(writer, message)
    held = asyncio.create_task(room.receive(writer, messages[3]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not held.done()
    log.gate.set()
    async with asyncio.timeout(5):
        await held
        await room.receive(writer, messages[4])
        await room.flush()
    assert await document_text(db, "doc-pipeline") == (5, "abcde")


async def test_a_stuck_committer_refuses_writers_after_the_wait(db: Database) -> None:
    log = GatedLog(db)
    room = await _room(db, log, max_pending=2, overload_wait=0.2)
    writer = _writer()
    messages = _typed("abc")
    await room.receive(writer, messages[0])
    async with asyncio.timeout(5):
        await log.entered.wait()
    await room.receive(writer, messages[1])
    with pytest.raises(OverloadedError):
        async with asyncio.timeout(5):
            await room.receive(writer, messages[2])
    log.gate.set()


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
