"""A small asyncio TCP proxy for fault injection between a node and Postgres or Redis.

``TcpProxy`` listens on 127.0.0.1 and forwards every connection to an upstream
address. Its mode can be switched at any time while traffic flows:

``PASS``       forward bytes both ways (the default).
``BLACKHOLE``  accept new connections but forward nothing, and stop forwarding on
               open ones: the peer sees a server that has stopped answering.
``RESET``      close every open connection with a TCP reset and reset new ones on
               accept: the peer sees a server that crashed.
``CLOSED``     stop listening (connection refused) and reset open connections: the
               peer sees a server that is gone.

Example::

    async with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
        ...
        await proxy.set_mode(ProxyMode.RESET)
        ...
        await proxy.set_mode(ProxyMode.PASS)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
from types import TracebackType
from typing import Self

_CHUNK = 64 * 1024


class ProxyMode(enum.Enum):
    """What the proxy does with traffic."""

    PASS = "pass"
    BLACKHOLE = "blackhole"
    RESET = "reset"
    CLOSED = "closed"


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _abort(writer)
        for task in self.tasks:
            task.cancel()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST rather than a FIN, as a crashed server would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """A switchable TCP proxy in front of ``upstream_host:upstream_port``.

    Args:
        upstream_host: where connections are forwarded.
        upstream_port: the upstream port.
        port: the local port to listen on; a free one when 0. It stays the same
            across ``CLOSED`` and back, so clients can reconnect.
    """

    def __init__(self, upstream_host: str, upstream_port: int, *, port: int = 0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = "127.0.0.1"
        self.port = port
        self.mode = ProxyMode.PASS
        self.connections_accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        # Set while forwarding is allowed; BLACKHOLE clears it so pumps stall.
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        """``host:port`` of the proxy, for building URLs."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Start listening (a no-op when already listening)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, reset every connection and wait for the handlers to end."""
        await self._stop_listening()
        self._reset_all()
        self._flowing.set()  # let handlers parked by BLACKHOLE run to their end
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def set_mode(self, mode: ProxyMode) -> None:
        """Switch mode; when this returns, the listener and open connections follow it."""
        self.mode = mode
        if mode is ProxyMode.BLACKHOLE:
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode in (ProxyMode.RESET, ProxyMode.CLOSED):
            self._reset_all()
        if mode is ProxyMode.CLOSED:
            await self._stop_listening()
        else:
            await self.start()

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def _reset_all(self) -> None:
        for link in list(self._links):
            link.reset()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        if self.mode in (ProxyMode.RESET, ProxyMode.CLOSED):
            _abort(writer)
            return
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._flowing.wait()  # BLACKHOLE: hold the connection, say nothing
            if writer.is_closing():  # reset while it waited
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                _abort(writer)
                return
            link.upstream = up_writer
            link.tasks = [
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            ]
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
            for task in link.tasks:
                task.cancel()
            for w in (writer, link.upstream):
                if w is not None:
                    w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                # In BLACKHOLE the data read is held back until the mode changes;
                # switching to RESET or CLOSED cancels this task instead.
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Half-close so the other side sees EOF, as a direct connection would.
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
