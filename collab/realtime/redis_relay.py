"""The relay over Redis pub/sub: one channel per open document, one for access.

Pub/sub is at-most-once (a subscriber that was disconnected misses messages),
so nothing here is trusted to arrive: rooms repair gaps from the log, a
periodic head check catches what was never announced, and every room catches
up after the subscription is re-established. Publishing never blocks a room:
messages go through a bounded outbox, and while Redis is away they are
dropped (the log still has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from collab.realtime.relay import (
    MessageHandler,
    NodeAlive,
    PresenceChanged,
    RelayMessage,
    UpdateCommitted,
    decode_message,
    encode_message,
)

logger = logging.getLogger(__name__)

_OUTBOX_LIMIT = 10_000
HEARTBEAT_SECONDS = 2.0
# Capped at one second, so a node is back on the relay (and re-checks access)
# within about a second of Redis returning.
_RETRY_SECONDS = (0.1, 0.25, 0.5, 1.0)


class RedisRelay:
    """Publishes this node's messages and delivers other nodes' to ``handler``."""

    def __init__(
        self,
        client: aioredis.Redis,
        node_id: str,
        *,
        prefix: str = "collab",
    ) -> None:
        self._client = client
        self._node_id = node_id
        self._prefix = prefix
        self._watched: set[str] = set()
        self._pubsub: aioredis.client.PubSub | None = None
        self._healthy = False
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(_OUTBOX_LIMIT)

    @property
    def healthy(self) -> bool:
        """True while subscribed and publishing succeeds."""
        return self._healthy

    def _doc_channel(self, doc_id: str) -> str:
        return f"{self._prefix}:doc:{doc_id}"

    @property
    def _control_channel(self) -> str:
        return f"{self._prefix}:control"

    async def publish(self, message: RelayMessage) -> None:
        """Queue ``message``; when the outbox is full the oldest is dropped."""
        if isinstance(message, UpdateCommitted | PresenceChanged):
            channel = self._doc_channel(message.doc_id)
        else:
            channel = self._control_channel
        if self._outbox.full():
            self._outbox.get_nowait()
        self._outbox.put_nowait((channel, encode_message(message)))

    async def watch(self, doc_id: str) -> None:
        """Subscribe to the document's channel (now, or when Redis is back)."""
        self._watched.add(doc_id)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.subscribe(self._doc_channel(doc_id))

    async def unwatch(self, doc_id: str) -> None:
        """Unsubscribe from the document's channel."""
        self._watched.discard(doc_id)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self._doc_channel(doc_id))

    async def run(
        self, handler: MessageHandler, on_subscribed: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Deliver and publish until cancelled, reconnecting as needed.

        Args:
            handler: receives every message of another node.
            on_subscribed: called after every (re)subscription, when messages
                may have been missed while Redis was away.
        """
        async with asyncio.TaskGroup() as group:
            group.create_task(self._publish_forever())
            group.create_task(self._listen_forever(handler, on_subscribed))
            group.create_task(self._heartbeat_forever())

    async def _heartbeat_forever(self) -> None:
        while True:
            await self.publish(NodeAlive(self._node_id))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _publish_forever(self) -> None:
        while True:
            channel, data = await self._outbox.get()
            try:
                await self._client.publish(channel, data)
            except (RedisError, OSError) as exc:
                self._mark_unhealthy(exc)

    async def _listen_forever(
        self, handler: MessageHandler, on_subscribed: Callable[[], Awaitable[None]] | None
    ) -> None:
        attempt = 0
        while True:
            try:
                await self._listen(handler, on_subscribed)
            except (RedisError, OSError) as exc:
                self._mark_unhealthy(exc)
            delay = _RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)]
            attempt = 0 if self._healthy else attempt + 1
            await asyncio.sleep(delay)

    async def _listen(
        self, handler: MessageHandler, on_subscribed: Callable[[], Awaitable[None]] | None
    ) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            channels = [self._control_channel, *map(self._doc_channel, self._watched)]
            await pubsub.subscribe(*channels)
            self._pubsub = pubsub
            if not self._healthy:
                logger.info("relay subscribed to Redis (%d documents)", len(self._watched))
            self._healthy = True
            if on_subscribed is not None:
                await on_subscribed()
            async for raw in pubsub.listen():
                await self._deliver(raw, handler)
        finally:
            self._pubsub = None
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _deliver(self, raw: dict[str, object], handler: MessageHandler) -> None:
        data = raw.get("data")
        if raw.get("type") != "message" or not isinstance(data, bytes):
            return
        message = decode_message(data)
        if message is None or message.node_id == self._node_id:
            return
        try:
            await handler(message)
        except Exception:  # one bad delivery must not stop the relay
            logger.exception("relay delivery failed")

    def _mark_unhealthy(self, exc: BaseException) -> None:
        if self._healthy:
            logger.warning("relay lost Redis: %s", exc)
        self._healthy = False
