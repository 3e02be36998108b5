"""One connected client: its identity, role, budgets and a bounded outgoing queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from auth.access import Role
from auth.models import User
from collab.realtime import close_codes
from collab.realtime.budgets import TokenBucket
from collab.realtime.frames import binary_frame
from collab.realtime.websocket import WebSocketConnection

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024
MAX_QUEUED_MESSAGES = 4096
# A message is written straight to the socket only while the transport holds
# less than this unsent: past it the client is not keeping up, and what
# follows waits in the bounded queue (asyncio's own high-water mark).
DIRECT_WRITE_LIMIT = 64 * 1024


class Outgoing:
    """A message for several peers, framed once for all of them."""

    __slots__ = ("_frame", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        """The payload as a WebSocket binary frame (built on first use)."""
        if self._frame is None:
            self._frame = binary_frame(self.payload)
        return self._frame


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLimits:
    """How much one connection may send and have waiting for it."""

    rate: float
    burst: float
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES


class Peer:
    """A WebSocket client of one document.

    A message to a client that keeps up is written to its socket at once,
    framed once per broadcast (:class:`Outgoing`): no queue, no task and no
    wake-up per reader. Once unsent bytes pile up in its transport, or while
    earlier messages still wait, messages go through a queue bounded in
    messages and in bytes, drained by a task that exists only while the queue
    is not empty, so a client that stops reading is disconnected (1013, it may
    come back) instead of growing the node's memory. An idle connection holds
    neither a queue nor a task. A sync step 2 reply still waiting in the queue
    makes further step 1 requests redundant (:attr:`awaiting_step2`): the
    queued reply plus the updates broadcast after it already bring the client
    up to date.
    """

    __slots__ = (
        "_bucket",
        "_dropped",
        "_max_bytes",
        "_queue",
        "_queued_bytes",
        "_sender",
        "_started",
        "_step2_queued",
        "_step2_unflushed",
        "_transport",
        "_unflushed",
        "_unflushed_bytes",
        "_user_bucket",
        "heard_at",
        "id",
        "pinged_at",
        "role",
        "role_checked_at",
        "user",
        "ws",
    )

    def __init__(
        self,
        ws: WebSocketConnection,
        user: User,
        role: Role,
        limits: PeerLimits,
        *,
        user_bucket: TokenBucket | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.ws = ws
        self.user = user
        self.role = role
        # When ``role`` was last read from the database (at connect, by now).
        self.role_checked_at = time.monotonic()
        self._bucket = TokenBucket(limits.rate, limits.burst)
        self._user_bucket = user_bucket
        self._max_bytes = limits.max_queued_bytes
        self._transport = ws.transport
        self._queue: deque[tuple[bytes | Outgoing, bool]] | None = None
        self._queued_bytes = 0
        self._step2_queued = 0
        self._sender: asyncio.Task[None] | None = None
        # Frames written at the end of this turn of the event loop (see _Flusher).
        self._unflushed: list[bytes] | None = None
        self._unflushed_bytes = 0
        self._step2_unflushed = 0
        self._started = False
        self._dropped = False
        # Liveness, kept by the node's Keepalive (see collab.realtime.keepalive).
        self.heard_at = 0.0
        self.pinged_at: float | None = None

    @property
    def reading(self) -> bool:
        """The socket is being read (see ``Keepalive.sweep``)."""
        return self.ws.reading

    async def spend(self) -> None:
        """Wait until this connection and this user may send one more message."""
        await self._bucket.spend()
        if self._user_bucket is not None:
            await self._user_bucket.spend()

    @property
    def can_write(self) -> bool:
        """Editors and owners change the document; viewers only watch."""
        return self.role >= Role.EDITOR

    @property
    def awaiting_step2(self) -> bool:
        """A sync step 2 reply is queued and not yet written to the socket."""
        return self._step2_queued > 0 or self._step2_unflushed > 0

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the queue."""
        return self._queued_bytes

    def start(self) -> None:
        """Start writing to the socket (until now messages only queue)."""
        self._started = True
        if self._queue:
            self._start_sender()

    def send(self, message: bytes | Outgoing, *, step2: bool = False) -> None:
        """Write or queue ``message``; a peer over its queue bounds is disconnected (once).

        One message is always accepted into an empty queue, so a document
        larger than the byte bound can still be synced.
        """
        if self._dropped or self.ws.closed:
            return
        queue = self._queue
        if not queue and self._sender is None and self._write_soon(message, step2):
            return
        if queue is None:
            queue = self._queue = deque()
        size = len(message.payload if isinstance(message, Outgoing) else message)
        if queue and (
            self._queued_bytes + size > self._max_bytes or len(queue) >= MAX_QUEUED_MESSAGES
        ):
            self._drop()
            return
        queue.append((message, step2))
        self._queued_bytes += size
        self._step2_queued += step2
        if self._sender is None and self._started:
            self._start_sender()

    def _write_soon(self, message: bytes | Outgoing, step2: bool) -> bool:
        """Buffer ``message`` for a socket that keeps up; False when it must be queued.

        What a peer is sent within one turn of the event loop goes out in one
        socket write at the end of that turn: in a reconnect storm every
        newcomer's presence reaches every peer, and a committed group is
        several updates. A turn may handle many frames of one client, so the
        buffer is bounded like the socket's: past ``DIRECT_WRITE_LIMIT`` the
        rest waits in the bounded queue, and a sync reply in the buffer counts
        as waiting (a client repeating step 1 in one burst gets one reply).
        """
        frame = message.frame if isinstance(message, Outgoing) else binary_frame(message)
        if self._unflushed is not None:
            if self._unflushed_bytes + len(frame) > DIRECT_WRITE_LIMIT:
                return False
            self._unflushed.append(frame)
        else:
            transport = self._transport
            if (
                not self._started
                or transport is None
                or transport.is_closing()
                or transport.get_write_buffer_size() >= DIRECT_WRITE_LIMIT
            ):
                return False
            self._unflushed = [frame]
            _flusher.add(self)
        self._unflushed_bytes += len(frame)
        self._step2_unflushed += step2
        return True

    def _discard_unflushed(self) -> list[bytes] | None:
        frames, self._unflushed = self._unflushed, None
        self._unflushed_bytes = 0
        self._step2_unflushed = 0
        return frames

    def _flush(self) -> None:
        frames = self._discard_unflushed()
        transport = self._transport
        if not frames or transport is None or transport.is_closing() or self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def _start_sender(self) -> None:
        self._sender = asyncio.create_task(self._drain(), name=f"peer-{self.id}")

    def _drop(self) -> None:
        self._dropped = True
        self._clear()
        logger.warning("closing slow client %s of user %s", self.id, self.user.id)
        self.close(close_codes.TRY_AGAIN_LATER, "slow consumer, reconnect")

    def _clear(self) -> None:
        self._queue = None
        self._queued_bytes = 0
        self._step2_queued = 0

    def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` (no-op when already closed)."""
        self.ws.close(code, reason)

    async def stop(self) -> None:
        """Stop the sender task and free whatever was still queued."""
        self._started = False
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        self._clear()

    async def _drain(self) -> None:
        """Write the queue out, waiting for the socket to drain; ends once it is empty."""
        try:
            while self._queue:
                message, step2 = self._queue.popleft()
                payload = message.payload if isinstance(message, Outgoing) else message
                self._queued_bytes -= len(payload)
                try:
                    # This waits while the transport is paused (the client is
                    # not reading): that is what lets the queue fill up.
                    await self.ws.send(payload)
                except (ConnectionError, RuntimeError):
                    self._clear()
                    return
                finally:
                    # Counted until written, so a step 1 arriving meanwhile is not answered twice.
                    self._step2_queued = max(0, self._step2_queued - step2)
        finally:
            self._sender = None
            if not self._queue:
                self._queue = None  # an idle connection keeps no queue

    def heard(self, now: float) -> None:
        """The client sent a frame (any frame, a pong included) at ``now``."""
        self.heard_at = now
        self.pinged_at = None

    def ping(self, now: float) -> None:
        """Write a ping frame to the socket and remember when."""
        self.pinged_at = now
        self.ws.ping()

    def abort(self) -> None:
        """Drop the connection at once: the client stopped answering."""
        logger.info("dropping unresponsive client %s of user %s", self.id, self.user.id)
        self.ws.abort()

    def describe(self) -> dict[str, Any]:
        """For logs."""
        return {"peer": self.id, "user": self.user.id, "role": self.role.label}


class _Flusher:
    """Writes every peer's frames of this event-loop turn, in one callback per turn."""

    __slots__ = ("_loop", "_peers")

    def __init__(self) -> None:
        self._peers: list[Peer] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A callback scheduled on a loop that has since stopped never runs.
            for stale in self._peers:
                stale._discard_unflushed()
            self._peers = []
            self._loop = loop
            loop.call_soon(self._flush)
        self._peers.append(peer)

    def _flush(self) -> None:
        peers, self._peers = self._peers, []
        self._loop = None
        for peer in peers:
            peer._flush()


_flusher = _Flusher()
