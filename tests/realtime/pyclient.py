"""A minimal y-websocket client on pycrdt, for protocol tests.

It performs the same handshake as the JavaScript client (answers the
server's step 1, sends its own) and keeps a local ``Doc`` in step with the
server; local edits are sent as sync updates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from pycrdt import Doc, Text, TransactionEvent

from collab.realtime.protocol import (
    AwarenessEntry,
    AwarenessMessage,
    SyncMessage,
    SyncType,
    awareness_message,
    decode_awareness,
    decode_message,
    encode_awareness,
    sync_message,
)


class PyClient:
    """One connection plus its document and the presence it has seen."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, client_id: int) -> None:
        self.ws = ws
        self.doc: Doc[Any] = Doc(client_id=client_id)
        self.text = self.doc.get("content", type=Text)
        self.synced = asyncio.Event()
        self.presence: dict[int, dict[str, Any] | None] = {}
        self.received: list[bytes] = []
        self._remote = False
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self._sub = self.doc.observe(self._on_change)

    def _on_change(self, event: TransactionEvent) -> None:
        if not self._remote and not self.ws.closed:
            task = asyncio.ensure_future(
                self.ws.send_bytes(sync_message(SyncType.UPDATE, event.update))
            )
            _tasks.add(task)
            task.add_done_callback(_tasks.discard)

    async def start(self) -> None:
        """Send our step 1 and start reading."""
        await self.ws.send_bytes(sync_message(SyncType.STEP1, self.doc.get_state()))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type is not aiohttp.WSMsgType.BINARY:
                break
            self.received.append(frame.data)
            await self._handle(frame.data)
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, data: bytes) -> None:
        message = decode_message(data)
        if isinstance(message, SyncMessage):
            if message.subtype is SyncType.STEP1:
                diff = self.doc.get_update(message.payload)
                await self.ws.send_bytes(sync_message(SyncType.STEP2, diff))
                return
            self._remote = True
            try:
                self.doc.apply_update(message.payload)
            finally:
                self._remote = False
            if message.subtype is SyncType.STEP2:
                self.synced.set()
        elif isinstance(message, AwarenessMessage):
            for entry in decode_awareness(message.payload):
                self.presence[entry.client_id] = entry.state

    async def set_presence(self, state: dict[str, Any] | None, clock: int = 1) -> None:
        """Announce our own awareness state."""
        entry = AwarenessEntry(self.doc.client_id, clock, state)
        await self.ws.send_bytes(awareness_message(encode_awareness([entry])))

    async def wait_for(self, predicate: Any, within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, checking after each message."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_text(self, expected: str, within: float = 5.0) -> None:
        """Wait until the local text equals ``expected``."""
        await self.wait_for(lambda: str(self.text) == expected, within)

    async def wait_closed(self, within: float = 5.0) -> int | None:
        """Wait for the server to close us; return the close code."""
        await self.wait_for(lambda: self.ws.closed, within)
        return self.ws.close_code

    async def close(self) -> None:
        """Close the connection and stop reading."""
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


_tasks: set[asyncio.Task[None]] = set()


@asynccontextmanager
async def connect(
    session: aiohttp.ClientSession | Any, url: str, *, client_id: int, sync: bool = True
) -> AsyncIterator[PyClient]:
    """Connect a :class:`PyClient` (``session`` may be a pytest-aiohttp TestClient)."""
    ws = await session.ws_connect(url)
    client = PyClient(ws, client_id)
    await client.start()
    try:
        if sync:
            async with asyncio.timeout(5):
                await client.synced.wait()
        yield client
    finally:
        await client.close()
