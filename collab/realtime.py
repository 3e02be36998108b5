"""Lifetime of the real-time layer: the room manager, the relay and their tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from collab import revocation
from collab.feed import CHANGE_SIGNALS
from collab.keys import REDIS, ROOMS, SETTINGS
from collab.ops import READINESS_CHECKS
from collab.redis_relay import HEARTBEAT_SECONDS, RedisRelay
from collab.relay import AccessChanged, LocalRelay, Relay
from collab.room_registry import RoomManager
from collab.rooms import RoomConfig
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE

HEAD_CHECK_SECONDS = 2.0
# Three missed heartbeats: the node is taken for dead and its presence removed.
NODE_SILENCE_SECONDS = 3 * HEARTBEAT_SECONDS


async def rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open documents of this node; on cleanup every room is flushed and snapshotted.

    With Redis configured, a relay task delivers other nodes' messages and a
    head-check task catches up any room whose log moved without a message.
    """
    settings = app[SETTINGS]
    config = RoomConfig(
        node_id=settings.node_id,
        snapshot_every=settings.snapshot_every,
        commit_window=settings.commit_window_ms / 1000,
    )
    relay: Relay
    redis_relay: RedisRelay | None = None
    if REDIS in app:
        redis_relay = RedisRelay(
            app[REDIS],
            settings.node_id,
            prefix=settings.redis_prefix,
            on_reconnect=lambda: _catch_up(app),
        )
        relay = redis_relay
    else:
        relay = LocalRelay()
    manager = RoomManager(
        EventLog(app[DATABASE]),
        relay,
        config,
        grace=settings.room_grace_seconds,
        max_peers=settings.max_connections_per_document,
    )
    manager.on_access_changed = lambda message: _apply_remote_access(app, message)
    manager.on_advanced = app[CHANGE_SIGNALS].notify
    app[ROOMS] = manager
    tasks = []
    if redis_relay is not None:
        app.setdefault(READINESS_CHECKS, []).append(
            ("relay", lambda: "ok" if relay.healthy else "degraded")
        )
        tasks.append(asyncio.create_task(redis_relay.run(manager.deliver)))
        tasks.append(
            asyncio.create_task(
                manager.check_heads_forever(HEAD_CHECK_SECONDS, NODE_SILENCE_SECONDS)
            )
        )
    yield
    await manager.close_all()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _catch_up(app: web.Application) -> None:
    if ROOMS in app:
        await app[ROOMS].catch_up_all()


async def _apply_remote_access(app: web.Application, message: AccessChanged) -> None:
    rooms = app[ROOMS]
    if message.doc_ids:
        revocation.close_deleted(rooms, list(message.doc_ids))
    if message.user_id is not None:
        await revocation.apply_access_change(
            rooms, app[DATABASE], message.project_id, message.user_id
        )
