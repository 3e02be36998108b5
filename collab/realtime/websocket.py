"""A server-side WebSocket connection on a bare asyncio transport.

aiohttp performs the HTTP upgrade; then :mod:`collab.realtime.upgrade` takes
the socket from it and this protocol serves the rest of the connection. An
idle connection is then only this object, its transport and its socket.
Served by aiohttp, each one also kept the parsed upgrade request alive for
the socket's whole life, with aiohttp's request handler, reader, writer and
two suspended tasks: about 9 KiB of the 19.7 an idle connection cost at
10,000 connections, and a frame, a future and a task wake-up per message.

Frames are parsed as they arrive (:mod:`collab.realtime.frames`); pings are
answered and close frames handled at once. Binary messages wait in a small
inbox drained by a task that exists only while there is something to
handle, so messages of one client are handled one at a time and in order,
and a burst of them costs one task. A client whose messages pile up (it
sends faster than its budget, or than the document commits) is no longer
read until the inbox drains: the rate limit slows it down, never closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Protocol

from collab.metrics import WS_CONNECTIONS
from collab.realtime import close_codes, frames

logger = logging.getLogger(__name__)

# Unhandled messages, or bytes of them, at which the socket stops being read
# (it resumes below half of both).
INBOX_MESSAGES = 64
INBOX_BYTES = 64 * 1024
# How long a close we sent waits for the client's answering close frame.
CLOSE_TIMEOUT = 5.0
# What RFC 6455 calls a normal closure (the echo of a close without a code).
_NORMAL = 1000


class Session(Protocol):
    """What a connection serves: the endpoint's peer in a document's room."""

    def heard(self) -> None:
        """Bytes arrived from the client (any frame, a pong included)."""
        ...

    async def receive(self, message: bytes) -> None:
        """Handle one binary message (one at a time, in order)."""
        ...

    async def closed(self) -> None:
        """The connection is over and its last message handled (called once)."""
        ...


class WebSocketConnection(asyncio.Protocol):
    """One client's WebSocket, from just after the upgrade to the socket's end."""

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_close_received",
        "_close_sent",
        "_close_timer",
        "_drain_waiter",
        "_fragments",
        "_inbox",
        "_inbox_bytes",
        "_lost",
        "_lost_waiter",
        "_max_bytes",
        "_read_paused",
        "_session",
        "_skip",
        "_worker",
        "_write_paused",
        "close_code",
        "transport",
    )

    def __init__(self, max_message_bytes: int) -> None:
        self._max_bytes = max_message_bytes
        self.transport: asyncio.Transport | None = None
        self._session: Session | None = None
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversized frame still to drop
        # The message being received in fragments (one buffer: a flood of tiny
        # continuation frames costs time in proportion to its bytes, no more).
        self._fragments: bytearray | None = None
        self._inbox: deque[bytes] | None = None
        self._inbox_bytes = 0
        self._worker: asyncio.Task[None] | None = None
        self._read_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._close_sent = False
        self._close_received = False
        self._lost = False
        self._lost_waiter: asyncio.Future[None] | None = None
        # The code of the close frame sent or received first.
        self.close_code: int | None = None

    # -- the state others read

    @property
    def closed(self) -> bool:
        """A close frame went either way, or the socket is gone: send nothing more."""
        return self._close_sent or self._close_received or self._lost

    @property
    def lost(self) -> bool:
        """The socket is closed."""
        return self._lost

    @property
    def reading(self) -> bool:
        """The socket is being read (False while the client is held back)."""
        return not self._read_paused

    async def wait_lost(self) -> None:
        """Wait until the socket is closed."""
        if not self._lost:
            if self._lost_waiter is None:
                self._lost_waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._lost_waiter)

    def attach(self, session: Session) -> None:
        """Start handling messages (those that came before wait until now)."""
        self._session = session
        self._wake()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        WS_CONNECTIONS.inc()

    def data_received(self, data: bytes) -> None:
        if self._close_received or self._lost:
            return
        if self._session is not None:
            self._session.heard()
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
        buffer = self._buffer
        buffer += data
        try:
            self._read_frames(buffer)
        except frames.FramingError as exc:
            logger.info("bad framing from a client: %s", exc)
            self._fail(close_codes.MALFORMED, "bad framing")

    def _read_frames(self, buffer: bytearray) -> None:
        while not self._close_received and not self._skip:
            try:
                frame = frames.read_frame(buffer, self._max_bytes)
            except frames.TooLargeError as exc:
                self._skip_frame(exc.frame_size)
                self.close(close_codes.TOO_LARGE, str(exc))
                continue
            if frame is None:
                return
            self._on_frame(frame)

    def _skip_frame(self, size: int) -> None:
        """Drop an oversized frame as it arrives, so the client's close answer is still read.

        Closing the socket while the client is still sending would reset
        the connection and lose the close code on the way.
        """
        dropped = min(size, len(self._buffer))
        del self._buffer[:dropped]
        self._skip = size - dropped

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        WS_CONNECTIONS.dec()
        self._buffer = bytearray()
        self._fragments = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._wake_writer(ConnectionResetError("connection lost"))
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer(None)

    # -- frames in

    def _on_frame(self, frame: frames.Frame) -> None:
        opcode = frame.opcode
        if opcode == frames.BINARY or opcode == frames.CONTINUATION:
            if not self._close_sent:  # what follows a close we sent is not handled
                self._on_data(frame)
        elif opcode == frames.PING:
            if not self._close_sent:  # nothing may follow our close frame
                self._write(frames.frame(frames.PONG, frame.payload))
        elif opcode == frames.CLOSE:
            self._on_close(frames.close_code_of(frame.payload))
        elif opcode == frames.TEXT:
            self._fail(close_codes.MALFORMED, "binary y-websocket messages only")
        # A pong needs nothing beyond having been heard.

    def _on_data(self, frame: frames.Frame) -> None:
        fragments = self._fragments
        if frame.opcode == frames.BINARY:
            if fragments is not None:
                raise frames.FramingError("new message inside a fragmented one")
            if frame.fin:
                self._deliver(frame.payload)
            else:
                self._fragments = bytearray(frame.payload)
            return
        if fragments is None:
            raise frames.FramingError("continuation without a message")
        fragments += frame.payload
        if len(fragments) > self._max_bytes:
            self._fragments = None
            self.close(close_codes.TOO_LARGE, f"message larger than {self._max_bytes} bytes")
            return
        if frame.fin:
            self._fragments = None
            self._deliver(bytes(fragments))

    def _deliver(self, message: bytes) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(message)
        self._inbox_bytes += len(message)
        if (
            not self._read_paused
            and (len(inbox) >= INBOX_MESSAGES or self._inbox_bytes >= INBOX_BYTES)
            and self.transport is not None
        ):
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def _on_close(self, code: int | None) -> None:
        self._close_received = True
        if self.close_code is None:
            self.close_code = code
        if not self._close_sent:
            self._close_sent = True
            self._write(frames.close_frame(_NORMAL if code is None else code, ""))
        if self.transport is not None:
            self.transport.close()

    def _fail(self, code: int, reason: str) -> None:
        """Close after a framing error: the rest of the stream cannot be parsed."""
        self._buffer = bytearray()
        self._close_received = True  # nothing more is read
        self.close(code, reason)
        if self.transport is not None:
            self.transport.close()

    # -- messages to the session

    def _wake(self) -> None:
        """Start the worker when it has something to do and nobody runs it."""
        if self._worker is not None or self._session is None:
            return
        if self._inbox or self._lost:
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        session = self._session
        assert session is not None
        try:
            # A close we sent empties the inbox; one the client sent does not:
            # what it sent before closing (its last edit) is still handled.
            while inbox := self._inbox:
                message = inbox.popleft()
                self._inbox_bytes -= len(message)
                if (
                    self._read_paused
                    and len(inbox) <= INBOX_MESSAGES // 2
                    and self._inbox_bytes <= INBOX_BYTES // 2
                ):
                    self._resume_reading()
                await self._receive(session, message)
            self._inbox = None
            if self._lost:
                self._session = None  # closed() runs once
                try:
                    await session.closed()
                except Exception:
                    logger.exception("cannot end a session")
        finally:
            self._worker = None
        self._wake()  # a message or the end that came while closed() ran

    async def _receive(self, session: Session, message: bytes) -> None:
        try:
            await session.receive(message)
        except Exception:
            logger.exception("cannot handle a message")
            self.close(close_codes.INTERNAL, "internal error")

    def _resume_reading(self) -> None:
        self._read_paused = False
        if self.transport is not None and not self._lost:
            self.transport.resume_reading()

    # -- frames out

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                transport.write(data)

    async def send(self, payload: bytes) -> None:
        """Write ``payload`` as a binary frame, then wait while the client reads it.

        Raises:
            ConnectionResetError: the connection is closing or gone.
        """
        if self.closed or self.transport is None:
            raise ConnectionResetError("connection closed")
        self.transport.write(frames.binary_frame(payload))
        if self._write_paused:
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
            await waiter

    def _wake_writer(self, error: Exception | None) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def ping(self) -> None:
        """Write an empty ping frame."""
        if not self.closed:
            self._write(frames.PING_FRAME)

    def close(self, code: int, reason: str) -> None:
        """Send a close frame; the socket closes on the client's answer or after a timeout.

        Messages that arrived but were not handled yet are dropped.
        """
        if self._close_sent or self._lost:
            return
        self._close_sent = True
        if self.close_code is None:
            self.close_code = code
        self._inbox = None
        self._inbox_bytes = 0
        if self._read_paused:
            self._resume_reading()  # the client's answer must be read
        self._write(frames.close_frame(code, reason))
        if self.transport is not None and not self._close_received:
            self._close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort)

    def abort(self) -> None:
        """Drop the socket at once, unsent bytes included."""
        if self.transport is not None and not self._lost:
            self.transport.abort()
