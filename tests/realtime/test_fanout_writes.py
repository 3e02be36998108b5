"""Broadcasts are framed once and written straight to readers that keep up.

What one event-loop turn sends a reader goes out in one socket write; these
tests check that readers still get every message, whole and in order, and
that a reader that stops reading is still closed (1013) without holding up
the others.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from collab.realtime.frames import binary_frame
from collab.realtime.keys import ROOMS
from collab.realtime.room import Room
from tests.conftest import Client
from tests.realtime.seed import Seeded, ws_path

# One of each frame header length (7-bit, 16-bit and 64-bit payload lengths).
SIZES = (1, 125, 126, 65_535, 65_536, 200_000)


async def _room(client: Client, seeded: Seeded, peers: int) -> Room:
    async with asyncio.timeout(5):
        while True:
            room = client.app[ROOMS].get(seeded.doc_id)
            if room is not None and len(room.peers) >= peers:
                return room
            await asyncio.sleep(0.01)


async def _binary_frames(ws: ClientWebSocketResponse, count: int) -> list[bytes]:
    """The next ``count`` binary messages, skipping the greeting (sync step 1, presence)."""
    received: list[bytes] = []
    async with asyncio.timeout(10):
        while len(received) < count:
            frame = await ws.receive()
            assert frame.type is WSMsgType.BINARY, frame
            if frame.data[:1] == b"\xff":
                received.append(frame.data)
    return received


def test_binary_frame_headers() -> None:
    assert binary_frame(b"ab") == b"\x82\x02ab"
    assert binary_frame(bytes(126))[:4] == b"\x82\x7e\x00\x7e"
    assert binary_frame(bytes(65_536))[:10] == b"\x82\x7f" + (65_536).to_bytes(8, "big")


async def test_messages_of_one_turn_arrive_whole_and_in_order(
    client: Client, seeded: Seeded
) -> None:
    readers = [await client.ws_connect(ws_path(seeded, who)) for who in ("viewer", "editor")]
    try:
        room = await _room(client, seeded, len(readers))
        # Marked 0xff (no y-websocket message starts so) to tell them from the greeting.
        sent = [b"\xff" + bytes([i]) * size for i, size in enumerate(SIZES * 3)]
        for message in sent:  # one turn: nothing awaits in between
            room.broadcast(message)
        for ws in readers:
            assert await _binary_frames(ws, len(sent)) == sent
    finally:
        for ws in readers:
            await ws.close()


async def _stalled_socket(client: Client, path: str) -> asyncio.StreamWriter:
    """A real WebSocket upgrade, after which the client never reads again."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {client.host}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    return writer


async def test_a_stalled_reader_is_closed_and_the_others_keep_receiving(
    client: Client, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    stalled = await _stalled_socket(client, ws_path(seeded, "viewer"))
    reader = await client.ws_connect(ws_path(seeded, "editor"), max_msg_size=0)
    try:
        room = await _room(client, seeded, 2)
        viewer_id = seeded.users["viewer"].id
        stalled_peer = next(p for p in room.peers.values() if p.user.id == viewer_id)
        big = b"\xff" + bytes(512 * 1024)
        sent = 0
        async with asyncio.timeout(30):
            while not stalled_peer.ws.closed:
                room.broadcast(big)
                sent += 1
                assert await _binary_frames(reader, 1) == [big]
        # Closing with 1013 (the close frame itself waits behind the unread bytes).
        assert "closing slow client" in caplog.text
        assert sent > 1
        assert stalled_peer.queued_bytes == 0
        assert not reader.closed
    finally:
        stalled.close()
        await reader.close()
