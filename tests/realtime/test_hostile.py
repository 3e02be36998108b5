"""Hostile input on the WebSocket: the sender is closed with the right code,
nothing bad is stored, and everyone else carries on unaffected."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

import pytest
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from collab.realtime.keys import ROOMS
from collab.realtime.protocol import (
    SyncMessage,
    SyncType,
    awareness_message,
    decode_message,
    sync_message,
    write_var_string,
    write_var_uint,
)
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from tests.conftest import Client
from tests.realtime.pyclient import PyClient, connect
from tests.realtime.seed import Seeded, seed, ws_path

# 18 bytes that cost yrs ~0.5 s of CPU and ~500 MB before failing.
SLOW_UPDATE = bytes.fromhex("c7a1c7bea123bad982aa9d994297a04a1fe4")
# Well-formed on the wire, but yrs refuses it (a GC struct flagged with an origin).
REFUSED_BY_YRS = bytes.fromhex("010107038007010702066162f09f988000")


async def echo_latency(a: PyClient, b: PyClient, marker: str) -> float:
    """Seconds for an edit of ``a`` to show at ``b``."""
    started = time.perf_counter()
    a.text += marker
    await b.wait_for(lambda: marker in str(b.text), within=5)
    return time.perf_counter() - started


HOSTILE_FRAMES: dict[str, tuple[bytes, int]] = {
    "slow 18-byte update": (sync_message(SyncType.UPDATE, SLOW_UPDATE), 4400),
    "slow update as step 2": (sync_message(SyncType.STEP2, SLOW_UPDATE), 4400),
    "update yrs refuses": (sync_message(SyncType.UPDATE, REFUSED_BY_YRS), 4400),
    "random bytes as update": (sync_message(SyncType.UPDATE, b"\x05\xff\x00\x13\x37"), 4400),
    "truncated varint": (b"\x00\x02\xff", 4400),
    "length past the end": (b"\x00\x02\x7f\x01\x02", 4400),
    "unknown message type": (b"\x07\x00", 4400),
    "unknown sync type": (b"\x00\x09\x00", 4400),
    "trailing bytes": (sync_message(SyncType.STEP1, b"\x00") + b"\x00", 4400),
    "bad state vector": (sync_message(SyncType.STEP1, b"\xff\xff\xff\xff\x0f"), 4400),
    "awareness not JSON": (awareness_message(b"\x01\x05\x01\x03abc"), 4400),
    "empty frame": (b"", 4400),
}


@pytest.mark.parametrize("name", list(HOSTILE_FRAMES))
async def test_hostile_frame_closes_only_the_sender(
    client: Client, seeded: Seeded, name: str
) -> None:
    frame, code = HOSTILE_FRAMES[name]
    log = EventLog(client.app[DATABASE])
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
        connect(client, ws_path(seeded, "editor"), client_id=66) as attacker,
    ):
        a.text += "before;"
        await b.wait_text("before;")
        head = (await log.head(seeded.doc_id)).seq
        await attacker.ws.send_bytes(frame)
        latency = await echo_latency(a, b, "after;")
        assert await attacker.wait_closed() == code
        # The slow update would have stalled the loop ~0.5 s; it never reaches yrs.
        assert latency < 0.3
    assert (await log.head(seeded.doc_id)).seq == head + 1


async def test_text_frame_is_malformed(client: Client, seeded: Seeded) -> None:
    async with connect(client, ws_path(seeded, "editor"), client_id=5) as c:
        await c.ws.send_str("hello")
        assert await c.wait_closed() == 4400


async def test_oversized_message_is_4413(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as big,
    ):
        await big.ws.send_bytes(sync_message(SyncType.UPDATE, bytes(9 * 1024 * 1024)))
        assert await big.wait_closed(within=10) == 4413
        a.text += "still here"
        await asyncio.sleep(0.05)
    assert (await EventLog(client.app[DATABASE]).head(seeded.doc_id)).seq == 1


async def test_message_flood_is_slowed_not_closed(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    """Over its budget a sender waits (the server stops reading it); it is never closed."""
    slow = dataclasses.replace(settings, updates_per_second=200.0, update_burst=100)
    client = await aiohttp_client(create_app(slow))
    seeded = await seed(client.app, {"owner": Role.OWNER, "editor": Role.EDITOR})
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
        connect(client, ws_path(seeded, "editor"), client_id=3) as flood,
    ):
        query = write_var_uint(3)  # query awareness: cheap, but still a message
        base = len(flood.received)
        started = time.perf_counter()
        for _ in range(300):
            await flood.ws.send_bytes(query)
        # Each query is answered, so the 300th answer marks the last one read.
        await flood.wait_for(lambda: len(flood.received) >= base + 300, within=10)
        elapsed = time.perf_counter() - started
        assert not flood.ws.closed
        # 100 at once, then 200 more at 200 a second (the user's bucket is twice that).
        assert elapsed >= 0.8
        assert await echo_latency(a, b, "ok") < 0.3


async def test_presence_flood_of_client_ids_is_capped(client: Client, seeded: Seeded) -> None:
    from collab.realtime.protocol import AwarenessEntry, encode_awareness

    async with (
        connect(client, ws_path(seeded, "editor"), client_id=2) as spammer,
        connect(client, ws_path(seeded, "owner"), client_id=1) as watcher,
    ):
        entries = [AwarenessEntry(1000 + i, 1, {"n": i}) for i in range(100)]
        await spammer.ws.send_bytes(awareness_message(encode_awareness(entries)))
        await watcher.wait_for(lambda: len(watcher.presence) > 0)
        await asyncio.sleep(0.05)
        assert len(watcher.presence) <= 4


async def test_huge_presence_state_is_dropped(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "editor"), client_id=2) as b,
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
    ):
        await a.set_presence({"blob": "x" * 100_000})
        await a.set_presence({"cursor": 1}, clock=2)
        await b.wait_for(lambda: 1 in b.presence)
        assert b.presence[1] is not None
        assert "blob" not in b.presence[1]


async def test_one_user_cannot_multiply_its_rate_with_more_sockets(
    settings: Settings, aiohttp_client: AiohttpClient
) -> None:
    """Four sockets of one user together go at the user's rate, not four times one socket's."""
    slow = dataclasses.replace(settings, updates_per_second=100.0, update_burst=50)
    client = await aiohttp_client(create_app(slow))
    seeded = await seed(client.app, {"editor": Role.EDITOR})
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                connect(client, ws_path(seeded, "editor"), client_id=100 + i)
            )
            for i in range(4)
        ]
        query = write_var_uint(3)
        bases = [len(sock.received) for sock in sockets]
        started = time.perf_counter()
        # 400 messages: alone, each socket would take 50 at once + 50 at 100/s = 0.5 s;
        # the user's bucket (200/s, burst 100) makes it 100 at once + 300 at 200/s.
        for _ in range(100):
            for sock in sockets:
                await sock.ws.send_bytes(query)
        for sock, base in zip(sockets, bases, strict=True):
            await sock.wait_for(lambda s=sock, b=base: len(s.received) >= b + 100, within=10)
        assert time.perf_counter() - started >= 1.3
        assert not any(sock.ws.closed for sock in sockets)


def _deep_json(depth: int) -> str:
    return '{"a":' + "[" * depth + "]" * depth + "}"


def _update_with_json(text: str, client: int = 424242) -> bytes:
    """A Yjs update inserting one ContentJSON item holding ``text`` into ``content``."""
    return b"".join(
        [
            write_var_uint(1),  # one client
            write_var_uint(1),  # one struct
            write_var_uint(client),
            write_var_uint(0),  # clock
            bytes([2]),  # ContentJSON, no origins: the parent follows
            write_var_uint(1),
            write_var_string("content"),
            write_var_uint(1),
            write_var_string(text),
            write_var_uint(0),  # empty delete set
        ]
    )


def _awareness_with_state(text: str, client: int = 66) -> bytes:
    payload = write_var_uint(1) + write_var_uint(client) + write_var_uint(1)
    return awareness_message(payload + write_var_string(text))


DEEP_FRAMES = {
    "awareness 100,000 deep": _awareness_with_state(_deep_json(100_000)),
    "awareness 65 deep": _awareness_with_state(_deep_json(64)),
    "update JSON 100,000 deep": sync_message(
        SyncType.UPDATE, _update_with_json(_deep_json(100_000))
    ),
    "update JSON 65 deep": sync_message(SyncType.UPDATE, _update_with_json(_deep_json(64))),
}


@pytest.mark.parametrize("name", list(DEEP_FRAMES))
async def test_deeply_nested_json_is_malformed_without_a_traceback(
    client: Client, seeded: Seeded, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = EventLog(client.app[DATABASE])
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as a,
        connect(client, ws_path(seeded, "editor"), client_id=66) as attacker,
    ):
        for _ in range(3):
            if not attacker.ws.closed:
                await attacker.ws.send_bytes(DEEP_FRAMES[name])
        assert await attacker.wait_closed() == 4400
        a.text += "fine"
        await a.wait_for(lambda: str(a.text) == "fine")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (await log.head(seeded.doc_id)).seq <= 1


async def test_shallow_json_in_awareness_is_accepted(client: Client, seeded: Seeded) -> None:
    async with (
        connect(client, ws_path(seeded, "owner"), client_id=1) as watcher,
        connect(client, ws_path(seeded, "editor"), client_id=66) as sender,
    ):
        await sender.ws.send_bytes(_awareness_with_state(_deep_json(60)))
        await watcher.wait_for(lambda: 66 in watcher.presence)
        assert not sender.ws.closed


async def test_repeated_step1_from_a_non_reader_is_answered_once(
    client: Client, seeded: Seeded
) -> None:
    """300 step 1 frames from a socket that never reads queue one full reply, not 300."""
    big = "x" * (2 * 1024 * 1024)
    async with connect(client, ws_path(seeded, "owner"), client_id=1) as owner:
        owner.text += big
        await owner.wait_for(lambda: len(owner.received) > 0)
        room = client.app[ROOMS].get(seeded.doc_id)
        assert room is not None
        await room.flush()
        ws = await client.ws_connect(ws_path(seeded, "viewer"), max_msg_size=0)
        try:
            for _ in range(300):
                await ws.send_bytes(sync_message(SyncType.STEP1, b"\x00"))
            viewer_id = seeded.users["viewer"].id
            async with asyncio.timeout(5):
                while not (peers := [p for p in room.peers.values() if p.user.id == viewer_id]):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            peer = peers[0]
            await asyncio.sleep(0.5)  # let every step 1 be read
            assert peer.queued_bytes <= len(big) + 64 * 1024
            step2s = 0
            async with asyncio.timeout(10):
                async for frame in ws:
                    message = decode_message(frame.data)
                    if isinstance(message, SyncMessage) and message.subtype is SyncType.STEP2:
                        step2s += 1
                    if not peer.awaiting_step2 and peer.queued_bytes == 0:
                        break
            assert step2s <= 3
            # Coalesced, not cut off: the viewer is still connected.
            assert not ws.closed and peer.id in room.peers
        finally:
            await ws.close()
