"""Lifetime of the real-time engine: rooms, relay, inbox and their background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from auth.access import project_role
from collab.config import Settings
from collab.keys import READINESS_CHECKS, REDIS, SETTINGS
from collab.realtime.access import AccessChanges
from collab.realtime.inbox import RelayInbox
from collab.realtime.keepalive import Keepalive
from collab.realtime.keys import ACCESS_CHANGES, CHANGE_SIGNALS, KEEPALIVE, ROOMS
from collab.realtime.redis_relay import HEARTBEAT_SECONDS, RedisRelay
from collab.realtime.relay import LocalRelay, Relay
from collab.realtime.room import RoomConfig
from collab.realtime.rooms import RoomManager
from collab.realtime.write_guard import WriteGuard
from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE

HEAD_CHECK_SECONDS = 2.0
# Open connections' roles are re-read this often even when the relay seems fine.
ACCESS_RECHECK_SECONDS = 10.0
# Three missed heartbeats: the node is taken for dead and its presence removed.
NODE_SILENCE_SECONDS = 3 * HEARTBEAT_SECONDS


async def rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open documents of this node and, with Redis, the relay to the other nodes.

    Rooms are flushed and snapshotted by the ``on_shutdown`` hook
    (``endpoint.close_websockets``), before this context's cleanup stops the
    relay tasks.
    """
    settings = app[SETTINGS]
    log = EventLog(app[DATABASE])
    redis_relay = (
        RedisRelay(app[REDIS], settings.node_id, prefix=settings.redis_prefix)
        if REDIS in app
        else None
    )
    relay: Relay = redis_relay if redis_relay is not None else LocalRelay()
    db = app[DATABASE]
    guard = WriteGuard(lambda project_id, user_id: project_role(db, project_id, user_id))
    rooms = _room_manager(settings, log, relay, app[CHANGE_SIGNALS].notify, guard)
    access = AccessChanges(rooms, app[DATABASE], relay, settings.node_id)
    inbox = RelayInbox(rooms, log, access)
    app[ROOMS] = rooms
    app[ACCESS_CHANGES] = access
    keepalive = app[KEEPALIVE] = Keepalive()
    tasks = [asyncio.create_task(keepalive.run())]
    if redis_relay is not None:
        app[READINESS_CHECKS].append(("relay", lambda: "ok" if redis_relay.healthy else "degraded"))
        tasks.append(asyncio.create_task(redis_relay.run(inbox.deliver, inbox.after_reconnect)))
        tasks.append(
            asyncio.create_task(inbox.check_heads_forever(HEAD_CHECK_SECONDS, NODE_SILENCE_SECONDS))
        )
        tasks.append(asyncio.create_task(access.recheck_forever(ACCESS_RECHECK_SECONDS)))
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _room_manager(
    settings: Settings,
    log: EventLog,
    relay: Relay,
    on_advanced: Callable[[str], None],
    write_guard: WriteGuard,
) -> RoomManager:
    config = RoomConfig(
        node_id=settings.node_id,
        snapshot_every=settings.snapshot_every,
        commit_window=settings.commit_window_ms / 1000,
    )
    return RoomManager(
        log,
        relay,
        config,
        grace=settings.room_grace_seconds,
        max_peers=settings.max_connections_per_document,
        max_peers_per_user=settings.max_connections_per_user_per_document,
        on_advanced=on_advanced,
        write_guard=write_guard,
    )
