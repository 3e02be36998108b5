"""Typed application state of the live event streams."""

from __future__ import annotations

from aiohttp import web

from collab.live.bus import LiveBus
from collab.live.relay import LivePublisher

LIVE_BUS = web.AppKey("collab.live_bus", LiveBus)
LIVE_PUBLISHER = web.AppKey("collab.live_publisher", LivePublisher)
