"""Typed application state owned by the collab package."""

from __future__ import annotations

import weakref

import redis.asyncio as aioredis
from aiohttp import web

from collab.config import Settings
from collab.peers import UserBuckets
from collab.room_registry import RoomManager

SETTINGS = web.AppKey("collab.settings", Settings)
REDIS = web.AppKey("collab.redis", aioredis.Redis)
WEBSOCKETS = web.AppKey("collab.websockets", weakref.WeakSet[web.WebSocketResponse])
ROOMS = web.AppKey("collab.rooms", RoomManager)
USER_BUCKETS = web.AppKey("collab.user_buckets", UserBuckets)
