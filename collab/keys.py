"""Typed application state owned by the app itself (the realtime engine keeps its own)."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis
from aiohttp import web

from collab.config import Settings

SETTINGS = web.AppKey("collab.settings", Settings)
REDIS = web.AppKey("collab.redis", aioredis.Redis)
# Extra named checks for /readyz: each returns True, False or a status word.
READINESS_CHECKS = web.AppKey("collab.readiness_checks", list[tuple[str, Callable[[], object]]])
