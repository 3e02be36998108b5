"""How live events reach every node: directly in one process, or over Redis pub/sub.

Routes call :meth:`LivePublisher.publish` after their transaction commits.
Without Redis the event goes straight to this node's bus. With Redis it is
published on ``<COLLAB_REDIS_PREFIX>:live`` and every node (this one
included) delivers it when it comes back, so all nodes see events in the
same order. Pub/sub is best effort: if Redis is down the event is delivered
on this node only and logged; clients resynchronise from the REST lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from collab.live.bus import LiveBus

logger = logging.getLogger(__name__)
_RETRY_SECONDS = 1.0
_SUBSCRIBE_SECONDS = 5.0


def live_channel(prefix: str) -> str:
    """The Redis channel of live events."""
    return f"{prefix}:live"


class LivePublisher(Protocol):
    """Where routes send the changes they committed."""

    async def publish(self, type_: str, project_id: str, data: dict[str, Any]) -> None:
        """Send one event to the project's members on every node."""
        ...


class LocalPublisher:
    """One process: deliver straight to the bus."""

    def __init__(self, bus: LiveBus) -> None:
        """Deliver to ``bus``."""
        self._bus = bus

    async def publish(self, type_: str, project_id: str, data: dict[str, Any]) -> None:
        """Deliver on this node."""
        self._bus.deliver(type_, project_id, data)


class RedisPublisher:
    """Several nodes: publish on Redis; :meth:`listen` delivers what arrives."""

    def __init__(self, client: aioredis.Redis, bus: LiveBus, *, prefix: str) -> None:
        """Publish on ``<prefix>:live`` and deliver to ``bus``."""
        self._client = client
        self._bus = bus
        self._channel = live_channel(prefix)
        self.subscribed = asyncio.Event()

    async def publish(self, type_: str, project_id: str, data: dict[str, Any]) -> None:
        """Publish; when Redis fails, deliver on this node only."""
        message = json.dumps({"type": type_, "project_id": project_id, "data": data})
        try:
            await self._client.publish(self._channel, message)
        except (RedisError, OSError) as exc:
            logger.warning("live event %s not relayed (%s); delivered here only", type_, exc)
            self._bus.deliver(type_, project_id, data)

    async def listen(self, stop: asyncio.Event) -> None:
        """Deliver relayed events until ``stop``; resubscribe after failures."""
        while not stop.is_set():
            pubsub: Any = self._client.pubsub()
            try:
                await _subscribe(pubsub, self._channel)
                self.subscribed.set()
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=_RETRY_SECONDS)
                    if message is not None and message["type"] == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                self.subscribed.clear()
                logger.warning("live event channel lost (%s); resubscribing", exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_RETRY_SECONDS):
                        await stop.wait()
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def _deliver(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
            type_, project_id, data = message["type"], message["project_id"], message["data"]
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed live event")
            return
        if isinstance(type_, str) and isinstance(project_id, str) and isinstance(data, dict):
            self._bus.deliver(type_, project_id, data)


async def _subscribe(pubsub: Any, channel: str) -> None:
    # Wait for the confirmation: what is published before it is lost.
    await pubsub.subscribe(channel)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SUBSCRIBE_SECONDS
    while (left := deadline - loop.time()) > 0:
        reply = await pubsub.get_message(timeout=left)
        if reply is not None and reply["type"] == "subscribe":
            return
    raise TimeoutError(f"no confirmation of the subscription to {channel}")
