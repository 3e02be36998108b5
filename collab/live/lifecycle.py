"""Start and stop the live event bus with the application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from collab.keys import REDIS, SETTINGS
from collab.live.bus import LiveBus
from collab.live.keys import LIVE_BUS, LIVE_PUBLISHER
from collab.live.relay import LocalPublisher, RedisPublisher

_SUBSCRIBE_WAIT_SECONDS = 5.0


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """A bus per node; relayed through Redis when the node has one."""
    bus = LiveBus()
    app[LIVE_BUS] = bus
    client = app.get(REDIS)
    if client is None:
        app[LIVE_PUBLISHER] = LocalPublisher(bus)
        yield
        bus.close()
        return
    publisher = RedisPublisher(client, bus, prefix=app[SETTINGS].redis_prefix)
    app[LIVE_PUBLISHER] = publisher
    stop = asyncio.Event()
    listening = asyncio.create_task(publisher.listen(stop))
    # Start serving subscribed when Redis answers; a node started while Redis
    # is down keeps retrying in the background.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_SUBSCRIBE_WAIT_SECONDS):
            await publisher.subscribed.wait()
    try:
        yield
    finally:
        bus.close()
        stop.set()
        await listening


async def close_live_streams(app: web.Application) -> None:
    """``on_shutdown``: end every ``/api/events`` stream so shutdown does not wait on them."""
    bus = app.get(LIVE_BUS)
    if bus is not None:
        bus.close()


async def publish(app: web.Application, type_: str, project_id: str, data: dict[str, Any]) -> None:
    """Send a committed change to the project's members (a no-op before startup)."""
    publisher = app.get(LIVE_PUBLISHER)
    if publisher is not None:
        await publisher.publish(type_, project_id, data)
