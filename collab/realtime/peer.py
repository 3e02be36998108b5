"""One connected client: its identity, role, and a bounded outgoing queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from aiohttp import web

from auth.access import Role
from auth.models import User
from collab.realtime.budgets import TokenBucket

logger = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 1013
MAX_QUEUED_MESSAGES = 2048


class Peer:
    """A WebSocket client of one document.

    Messages to it go through a bounded queue drained by its own task, so a
    client that stops reading is disconnected instead of growing memory.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        user: User,
        role: Role,
        *,
        rate: float,
        burst: float,
        user_bucket: TokenBucket | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.ws = ws
        self.user = user
        self.role = role
        self._bucket = TokenBucket(rate, burst)
        self._user_bucket = user_bucket
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUED_MESSAGES)
        self._sender: asyncio.Task[None] | None = None
        self._dropped = False

    def take(self) -> bool:
        """Spend one message from this connection's and this user's allowance."""
        if not self._bucket.take():
            return False
        return self._user_bucket is None or self._user_bucket.take()

    @property
    def can_write(self) -> bool:
        """Editors and owners change the document; viewers only watch."""
        return self.role >= Role.EDITOR

    def start(self) -> None:
        """Start draining the queue into the socket."""
        self._sender = asyncio.create_task(self._drain(), name=f"peer-{self.id}")

    def send(self, message: bytes) -> None:
        """Queue ``message``; a peer whose queue is full is disconnected (once)."""
        if self.ws.closed or self._dropped:
            return
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._dropped = True
            logger.warning("closing slow client %s of user %s", self.id, self.user.id)
            self.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer")

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
        """Stop the sender task."""
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    async def _drain(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self.ws.send_bytes(message)
            except (ConnectionError, RuntimeError):
                return

    def describe(self) -> dict[str, Any]:
        """For logs."""
        return {"peer": self.id, "user": self.user.id, "role": self.role.label}


_background: set[asyncio.Task[None]] = set()
