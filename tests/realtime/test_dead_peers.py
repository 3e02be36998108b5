"""Silent connections are pinged by the node's one keep-alive sweep; dead ones are dropped.

The intervals are shortened here; in production a connection silent for 30
seconds is pinged and dropped 15 seconds later if nothing came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp
import pytest

from collab.realtime import keepalive
from tests.conftest import Client
from tests.realtime.seed import Seeded, ws_path

PING_AFTER = 0.4
DEAD_AFTER = 0.4
# The longest a dead client may stay: silence, then the answer it never gives,
# each noticed up to one sweep late, plus scheduling slack on a busy machine.
DROPPED_WITHIN = PING_AFTER + DEAD_AFTER + 2 * PING_AFTER / keepalive.SWEEPS_PER_INTERVAL + 2.0


@pytest.fixture(autouse=True)
def fast_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keepalive, "PING_AFTER", PING_AFTER)
    monkeypatch.setattr(keepalive, "DEAD_AFTER", DEAD_AFTER)


async def _until(ws: aiohttp.ClientWebSocketResponse, kind: aiohttp.WSMsgType) -> float:
    """Read (never answering pings) until a message of ``kind``; return when it came."""
    while True:
        message = await ws.receive(timeout=DROPPED_WITHIN + 2)
        if message.type is kind:
            return time.monotonic()
        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            raise AssertionError(f"closed while waiting for {kind.name}")


async def test_a_client_that_never_answers_is_pinged_then_dropped(
    client: Client, seeded: Seeded
) -> None:
    ws = await client.ws_connect(ws_path(seeded, "owner"), autoping=False)
    started = time.monotonic()
    pinged = await _until(ws, aiohttp.WSMsgType.PING)
    assert pinged - started >= PING_AFTER * 0.9  # silence first, then the ping
    message = await ws.receive(timeout=DROPPED_WITHIN + 2)
    assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert time.monotonic() - started < DROPPED_WITHIN
    await ws.close()


async def test_a_client_that_answers_pings_stays(client: Client, seeded: Seeded) -> None:
    ws = await client.ws_connect(ws_path(seeded, "owner"))  # answers pings inside receive()
    # aiohttp restarts receive()'s own timeout after each ping it answers: bound the whole wait.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3 * DROPPED_WITHIN):  # several lifetimes of a dead client
            while True:
                message = await ws.receive()
                assert message.type is aiohttp.WSMsgType.BINARY  # the greeting; never a close
    assert not ws.closed
    await ws.close()


async def test_the_node_answers_a_clients_ping(client: Client, seeded: Seeded) -> None:
    ws = await client.ws_connect(ws_path(seeded, "owner"), autoping=False)
    await ws.ping(b"are you there")
    while True:
        message = await ws.receive(timeout=5)
        if message.type is aiohttp.WSMsgType.PONG:
            assert message.data == b"are you there"
            break
        assert message.type is not aiohttp.WSMsgType.CLOSED
    await ws.close()
