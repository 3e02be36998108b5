"""The WebSocket layer after the upgrade, byte by byte: framing, control frames, closing,
and the socket really leaving aiohttp (no request handler, no task per idle connection)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from pycrdt import Doc, Text

from collab.keys import SETTINGS
from collab.realtime import websocket
from collab.realtime.keys import ROOMS, WEBSOCKETS
from collab.realtime.protocol import SyncMessage, SyncType, decode_message, sync_message
from tests.conftest import Client
from tests.realtime.pyclient import connect
from tests.realtime.rawws import RawSocket, client_frame, raw_connect
from tests.realtime.seed import Seeded, ws_path

BINARY, TEXT, CLOSE, PING, PONG, CONTINUATION = 0x2, 0x1, 0x8, 0x9, 0xA, 0x0
STEP1 = sync_message(SyncType.STEP1, Doc().get_state())


@contextlib.asynccontextmanager
async def raw(
    client: Client, seeded: Seeded, who: str = "editor", *, after_upgrade: bytes = b""
) -> AsyncIterator[RawSocket]:
    server = client.server
    async with raw_connect(
        str(server.host), int(server.port or 0), ws_path(seeded, who), after_upgrade=after_upgrade
    ) as sock:
        yield sock


async def step2_of(sock: RawSocket) -> bytes:
    """Read frames until the server's sync step 2 answer; return its update."""
    while True:
        opcode, payload = await sock.read_frame()
        if opcode == BINARY:
            message = decode_message(payload)
            if isinstance(message, SyncMessage) and message.subtype is SyncType.STEP2:
                return message.payload


async def test_answer_names_no_extension_and_no_aiohttp_objects_stay(
    client: Client, seeded: Seeded
) -> None:
    tasks_before = len(asyncio.all_tasks())
    async with contextlib.AsyncExitStack() as stack:
        socks = [await stack.enter_async_context(raw(client, seeded)) for _ in range(20)]
        for sock in socks:
            await sock.send(client_frame(BINARY, STEP1))
            await step2_of(sock)
        assert b"Sec-WebSocket-Extensions" not in socks[0].head
        # aiohttp no longer knows these sockets, and an idle one runs no task.
        assert client.server.runner is not None
        assert client.server.runner.server is not None
        assert client.server.runner.server.connections == []
        assert len(client.app[WEBSOCKETS]) == 20
        assert len(asyncio.all_tasks()) <= tasks_before + 2


async def test_bytes_sent_with_the_upgrade_request_are_handled(
    client: Client, seeded: Seeded
) -> None:
    async with raw(client, seeded, after_upgrade=client_frame(BINARY, STEP1)) as sock:
        await step2_of(sock)


async def test_fragmented_message_with_a_ping_in_between(client: Client, seeded: Seeded) -> None:
    async with raw(client, seeded) as sock:
        third = len(STEP1) // 3 or 1
        await sock.send(client_frame(BINARY, STEP1[:third], fin=False))
        await sock.send(client_frame(PING, b"are you there"))
        await sock.send(client_frame(CONTINUATION, STEP1[third : 2 * third], fin=False))
        await sock.send(client_frame(CONTINUATION, STEP1[2 * third :]))
        frames = []
        while (PONG, b"are you there") not in frames:
            frames.append(await sock.read_frame())
        await step2_of(sock)


async def test_update_split_over_frames_reaches_the_document(
    client: Client, seeded: Seeded
) -> None:
    doc: Doc[Text] = Doc()
    doc["content"] = text = Text()
    text += "typed in pieces"
    update = sync_message(SyncType.UPDATE, doc.get_update())
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as watcher,
        raw(client, seeded) as sock,
    ):
        await sock.send(client_frame(BINARY, update[:5], fin=False))
        await sock.send(client_frame(CONTINUATION, update[5:]))
        await watcher.wait_text("typed in pieces")


async def test_an_edit_sent_together_with_the_close_is_kept(client: Client, seeded: Seeded) -> None:
    doc: Doc[Text] = Doc()
    doc["content"] = text = Text()
    text += "last words"
    update = sync_message(SyncType.UPDATE, doc.get_update())
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as watcher:
        async with raw(client, seeded) as sock:
            await sock.send(client_frame(BINARY, update) + client_frame(CLOSE, b""))
            assert await sock.close_code() == 1000
        await watcher.wait_text("last words")


HOSTILE_FRAMES: dict[str, tuple[bytes, int]] = {
    "text frame": (client_frame(TEXT, b"hello"), 4400),
    "unmasked frame": (client_frame(BINARY, STEP1, masked=False), 4400),
    "reserved bit": (client_frame(BINARY, STEP1, rsv=0x40), 4400),
    "unknown opcode": (client_frame(0x3, b"x"), 4400),
    "fragmented ping": (client_frame(PING, b"x", fin=False), 4400),
    "ping over 125 bytes": (client_frame(PING, bytes(126)), 4400),
    "continuation first": (client_frame(CONTINUATION, b"x"), 4400),
    "new message inside a fragmented one": (
        client_frame(BINARY, b"\x00", fin=False) + client_frame(BINARY, b"\x00"),
        4400,
    ),
    "one-byte close payload": (client_frame(CLOSE, b"\x03"), 4400),
    "close code 1005": (client_frame(CLOSE, (1005).to_bytes(2, "big")), 4400),
    "close reason not UTF-8": (client_frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 4400),
}


@pytest.mark.parametrize("name", list(HOSTILE_FRAMES))
async def test_bad_framing_is_4400_and_others_carry_on(
    client: Client, seeded: Seeded, name: str
) -> None:
    data, code = HOSTILE_FRAMES[name]
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
        raw(client, seeded) as sock,
    ):
        await sock.send(data)
        assert await sock.close_code() == code
        assert await sock.at_eof()
        a.text += "still fine"
        await b.wait_text("still fine")


async def test_oversized_header_is_4413_before_the_payload_arrives(
    client: Client, seeded: Seeded
) -> None:
    limit = client.app[SETTINGS].max_message_bytes
    async with raw(client, seeded) as sock:
        header = bytes([0x82, 0x80 | 127]) + (limit + 1).to_bytes(8, "big") + b"mask"
        await sock.send(header)  # and not one byte of the payload
        assert await sock.close_code() == 4413


async def test_oversized_fragmented_message_is_4413(client: Client, seeded: Seeded) -> None:
    limit = client.app[SETTINGS].max_message_bytes
    piece = bytes(limit // 2 + 1)
    async with raw(client, seeded) as sock:
        await sock.send(client_frame(BINARY, piece, fin=False))
        await sock.send(client_frame(CONTINUATION, piece, fin=False))
        assert await sock.close_code(within=20) == 4413


async def test_a_flood_of_empty_fragments_costs_no_more_than_its_bytes(
    client: Client, seeded: Seeded
) -> None:
    empty = client_frame(CONTINUATION, b"", fin=False)
    async with raw(client, seeded) as sock:
        await sock.send(client_frame(BINARY, STEP1[:1], fin=False))
        for _ in range(20):  # 20,000 empty fragments, then the rest of the message
            await sock.send(empty * 1000)
        await sock.send(client_frame(CONTINUATION, STEP1[1:]))
        await step2_of(sock)


async def test_nothing_follows_our_close_frame(client: Client, seeded: Seeded) -> None:
    piece = bytes(client.app[SETTINGS].max_message_bytes // 2 + 1)
    async with raw(client, seeded) as sock:
        await sock.send(client_frame(BINARY, piece, fin=False))
        await sock.send(client_frame(CONTINUATION, piece, fin=False))
        assert await sock.close_code(within=20) == 4413
        await sock.send(client_frame(PING, b"late") + client_frame(CLOSE, b""))
        rest = await sock.reader.read()  # up to the server's end of the stream
        assert rest == b""  # no pong, nothing after the close frame


async def test_client_close_is_echoed_and_the_socket_closed(client: Client, seeded: Seeded) -> None:
    async with raw(client, seeded) as sock:
        await sock.send(client_frame(CLOSE, (4000).to_bytes(2, "big") + b"bye"))
        assert await sock.close_code() == 4000
        assert await sock.at_eof()
    await _until_no_connections(client)


async def test_empty_close_is_answered_with_1000(client: Client, seeded: Seeded) -> None:
    async with raw(client, seeded) as sock:
        await sock.send(client_frame(CLOSE, b""))
        assert await sock.close_code() == 1000


async def test_a_client_that_never_answers_our_close_is_dropped(
    client: Client, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websocket, "CLOSE_TIMEOUT", 0.2)
    limit = client.app[SETTINGS].max_message_bytes
    async with raw(client, seeded) as sock:
        # An oversized frame is closed cleanly: the server waits for our answer...
        await sock.send(bytes([0x82, 0x80 | 127]) + (limit + 1).to_bytes(8, "big") + b"mask")
        assert await sock.close_code() == 4413
        # ...which never comes, so it drops the socket after CLOSE_TIMEOUT.
        assert await sock.at_eof(within=5)


async def test_disconnect_before_join_leaves_nothing_behind(client: Client, seeded: Seeded) -> None:
    for _ in range(5):
        async with raw(client, seeded):
            pass  # gone right after the 101, while the server still admits it
    await _until_no_connections(client)
    # Each one then leaves the room as soon as it had joined.
    async with asyncio.timeout(5):
        while (room := client.app[ROOMS].get(seeded.doc_id)) and room.peers:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def _until_no_connections(client: Client) -> None:
    sockets = client.app[WEBSOCKETS]
    async with asyncio.timeout(5):
        await asyncio.gather(*(c.wait_lost() for c in list(sockets)))
