"""Typed application state of the real-time engine."""

from __future__ import annotations

import weakref

from aiohttp import web

from collab.realtime.access import AccessChanges
from collab.realtime.budgets import UserBuckets
from collab.realtime.keepalive import Keepalive
from collab.realtime.rooms import RoomManager
from collab.realtime.signals import ChangeSignals
from collab.realtime.websocket import WebSocketConnection

ROOMS = web.AppKey("collab.rooms", RoomManager)
ACCESS_CHANGES = web.AppKey("collab.access_changes", AccessChanges)
WEBSOCKETS = web.AppKey("collab.websockets", weakref.WeakSet[WebSocketConnection])
USER_BUCKETS = web.AppKey("collab.user_buckets", UserBuckets)
CHANGE_SIGNALS = web.AppKey("collab.change_signals", ChangeSignals)
KEEPALIVE = web.AppKey("collab.keepalive", Keepalive)
