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

from aiohttp import web

from auth.access import Role
from auth.models import User
from collab.realtime import close_codes
from collab.realtime.budgets import TokenBucket

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED_BYTES = 8 * 1024 * 1024
MAX_QUEUED_MESSAGES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLimits:
    """How much one connection may send and have waiting for it."""

    rate: float
    burst: float
    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES


class Peer:
    """A WebSocket client of one document.

    Messages to it go through a queue bounded in messages and in bytes,
    drained by its own task, so a client that stops reading is disconnected
    (1013, it may come back) instead of growing the node's memory. A sync
    step 2 reply still waiting in the queue makes further step 1 requests
    redundant (:attr:`awaiting_step2`): the queued reply plus the updates
    broadcast after it already bring the client up to date.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
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
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._queued_bytes = 0
        self._step2_queued = 0
        self._ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._dropped = False

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
        return self._step2_queued > 0

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the queue."""
        return self._queued_bytes

    def start(self) -> None:
        """Start draining the queue into the socket."""
        self._sender = asyncio.create_task(self._drain(), name=f"peer-{self.id}")

    def send(self, message: bytes, *, step2: bool = False) -> None:
        """Queue ``message``; a peer over its queue bounds is disconnected (once).

        One message is always accepted into an empty queue, so a document
        larger than the byte bound can still be synced.
        """
        if self.ws.closed or self._dropped:
            return
        size = len(message)
        if self._queue and (
            self._queued_bytes + size > self._max_bytes or len(self._queue) >= MAX_QUEUED_MESSAGES
        ):
            self._drop()
            return
        self._queue.append((message, step2))
        self._queued_bytes += size
        self._step2_queued += step2
        self._ready.set()

    def _drop(self) -> None:
        self._dropped = True
        self._clear()
        logger.warning("closing slow client %s of user %s", self.id, self.user.id)
        self.close_soon(close_codes.TRY_AGAIN_LATER, "slow consumer, reconnect")

    def _clear(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0
        self._step2_queued = 0

    def close_soon(self, code: int, reason: str) -> None:
        """Close from synchronous code (the close itself is awaited in a task)."""
        task = asyncio.create_task(self.close(code, reason))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` (no-op when already closed)."""
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close(code=code, message=reason.encode()[:120])

    async def stop(self) -> None:
        """Stop the sender task and free whatever was still queued."""
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        self._clear()

    async def _drain(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            message, step2 = self._queue.popleft()
            self._queued_bytes -= len(message)
            try:
                await self.ws.send_bytes(message)
            except (ConnectionError, RuntimeError):
                return
            finally:
                # Counted until written, so a step 1 arriving meanwhile is not answered twice.
                self._step2_queued = max(0, self._step2_queued - step2)

    def describe(self) -> dict[str, Any]:
        """For logs."""
        return {"peer": self.id, "user": self.user.id, "role": self.role.label}


_background: set[asyncio.Task[None]] = set()
