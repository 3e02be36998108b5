"""A WebSocket client on a bare TCP stream, to send what no well-behaved client would."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade_request(path: str, key: str, *, extra: str = "") -> bytes:
    """A WebSocket upgrade request for ``path`` (``extra``: more header lines)."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def expected_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()  # noqa: S324


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """One frame as a client sends it (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes([first, mask_bit | size])
    elif size < 65536:
        header = bytes([first, mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([first, mask_bit | 127]) + size.to_bytes(8, "big")
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """One upgraded connection: write raw bytes, read the server's frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.head = b""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self, within: float = 5.0) -> tuple[int, bytes]:
        """The server's next frame: (opcode, payload)."""
        async with asyncio.timeout(within):
            first, second = await self.reader.readexactly(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(await self.reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await self.reader.readexactly(8), "big")
            assert not second & 0x80, "server frames are never masked"
            return first & 0x0F, await self.reader.readexactly(size)

    async def close_code(self, within: float = 5.0) -> int:
        """Skip frames up to the server's close frame; return its code."""
        while True:
            opcode, payload = await self.read_frame(within)
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")

    async def at_eof(self, within: float = 5.0) -> bool:
        """True once the server closed the TCP connection (reads what is left)."""
        async with asyncio.timeout(within):
            while await self.reader.read(65536):
                pass
        return True


@contextlib.asynccontextmanager
async def raw_connect(
    host: str, port: int, path: str, *, after_upgrade: bytes = b""
) -> AsyncIterator[RawSocket]:
    """Upgrade ``path``; ``after_upgrade`` goes in the same write as the request."""
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    sock = RawSocket(reader, writer)
    try:
        await sock.send(upgrade_request(path, key) + after_upgrade)
        sock.head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert sock.head.startswith(b"HTTP/1.1 101"), sock.head
        assert expected_accept(key).encode() in sock.head
        yield sock
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
