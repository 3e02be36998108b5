"""The real-time endpoint: ``/ws/{doc_id}?token=…`` speaking y-websocket.

The stock y-websocket client cannot send headers, so the access token comes
in the query string, or, in a browser, in the ``collab_session`` cookie
(accepted only from an allowed ``Origin``, else close 4403). The upgrade
always completes and failures are reported with close codes (4401, 4404,
…; see ``close_codes``): an HTTP error status would only make the client
retry forever without saying why. Final verdicts use 44xx codes, after which
the stock client stops; transient ones (load, a full document, a slow reader)
use 1011-1013, after which it reconnects (a node too busy to read the
caller's access within ``ADMISSION_WAIT`` closes with 1013). A client over
its message budget is slowed down, never closed.

An access token is checked once, at connect. A connection whose token
expires while open keeps working until it reconnects; revocation (removal or
demotion) is what cuts an open connection, and it does within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import WSMessage, WSMsgType, web

from auth.access import DocumentAccess, document_access
from auth.cookies import session_cookie
from auth.errors import OriginRefusedError
from auth.middleware import origin_allowed, user_of_token
from auth.models import User
from collab.keys import SETTINGS
from collab.metrics import WS_CONNECTIONS
from collab.realtime import close_codes
from collab.realtime.budgets import TokenBucket
from collab.realtime.keys import KEEPALIVE, ROOMS, USER_BUCKETS, WEBSOCKETS
from collab.realtime.peer import Peer, PeerLimits
from collab.realtime.protocol import ProtocolError, decode_message
from collab.realtime.room import OverloadedError, Room, RoomClosedError
from collab.realtime.rooms import RoomManager, TooManyPeersError
from collab.realtime.write_guard import AccessRevokedError
from eventstore import EventStoreError
from eventstore.events import is_valid_source
from eventstore.keys import DATABASE

logger = logging.getLogger(__name__)

# aiohttp closes with 1009 by itself past its own limit; keeping that limit
# above ours lets us answer ordinary oversized frames with 4413.
_AIOHTTP_LIMIT_FACTOR = 4
# permessage-deflate is declined. Every browser offers it, and accepting keeps
# a zlib compressor and decompressor per connection (about 100 KiB of the
# 130 KiB an idle connection cost with it, against 27 KiB without), and
# inflating every frame showed in the latency profiles; y-websocket messages
# are small binary CRDT updates that barely compress. The stock y-websocket
# server never negotiates it either.
PERMESSAGE_DEFLATE = False
# Upgrades reading the database at once (below the Postgres pool's 10
# connections, so requests and rooms still get one), and how long one may wait.
ADMISSIONS_AT_ONCE = 8
ADMISSION_WAIT = 30.0


_CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    """Upgrade, authenticate, join the document's room and serve the peer."""
    settings = request.app[SETTINGS]
    # No aiohttp heartbeat, and pings and pongs come to the pump: the node's
    # Keepalive pings silent connections instead (see collab.realtime.keepalive).
    ws = web.WebSocketResponse(
        heartbeat=None,
        autoping=False,
        max_msg_size=settings.max_message_bytes * _AIOHTTP_LIMIT_FACTOR,
        compress=PERMESSAGE_DEFLATE,
    )
    await ws.prepare(request)
    sockets = request.app[WEBSOCKETS]
    sockets.add(ws)
    WS_CONNECTIONS.inc()
    try:
        admitted = await _admit(request)
        if isinstance(admitted, _Refused):
            await ws.close(code=admitted.code, message=admitted.reason)
        else:
            await _serve(request, ws, admitted)
    finally:
        sockets.discard(ws)
        WS_CONNECTIONS.dec()
    return ws


@dataclass(frozen=True, slots=True)
class _Admitted:
    user: User
    access: DocumentAccess
    source: str | None


@dataclass(frozen=True, slots=True)
class _Refused:
    code: int
    reason: bytes


_gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


@contextlib.asynccontextmanager
async def _admission_slot() -> AsyncIterator[None]:
    """One of ``ADMISSIONS_AT_ONCE`` slots for the database reads of an upgrade.

    In a reconnect storm thousands of upgrades read the database at once;
    beyond the pool's size they queued inside the pool, whose 5-second
    acquire timeout then failed them as if the database were down. Waiting
    here instead is bounded by ``ADMISSION_WAIT`` (then 1013, retry).
    """
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        _gates.clear()  # a loop that is gone no longer needs its gate
        gate = _gates[loop] = asyncio.Semaphore(ADMISSIONS_AT_ONCE)
    async with asyncio.timeout(ADMISSION_WAIT):
        await gate.acquire()
    try:
        yield
    finally:
        gate.release()


async def _admit(request: web.Request) -> _Admitted | _Refused:
    """Who connects, to which document and with what role, or why they may not."""
    try:
        async with _admission_slot():
            user = await _authenticate(request)
            if user is None:
                return _Refused(close_codes.UNAUTHORIZED, b"missing, invalid or expired token")
            source = _query_parameter(request, "source")
            if source is not None and not is_valid_source(source):
                return _Refused(close_codes.MALFORMED, b"source must be 1-64 of [a-z0-9:._-]")
            doc_id = request.match_info["doc_id"]
            access = await document_access(request.app[DATABASE], doc_id, user.id)
    except OriginRefusedError:
        return _Refused(close_codes.FORBIDDEN, b"cookie from a foreign Origin")
    except (EventStoreError, TimeoutError) as exc:
        logger.warning("cannot admit a connection to %s: %s", request.path, exc)
        return _Refused(close_codes.TRY_AGAIN_LATER, b"server busy, retry")
    if access is None:
        return _Refused(close_codes.NOT_FOUND, b"unknown document")
    return _Admitted(user, access, source)


async def _serve(request: web.Request, ws: web.WebSocketResponse, admitted: _Admitted) -> None:
    """Join the room and pump the socket's frames into it until either side closes.

    One coroutine from join to leave: every coroutine still waiting while an
    idle socket is open costs its frame for the life of the connection.
    """
    app = request.app
    buckets = app[USER_BUCKETS]
    peer = _new_peer(request, ws, admitted, buckets.acquire(admitted.user.id))
    keepalive = app[KEEPALIVE]
    keepalive.watch(peer)
    manager = app[ROOMS]
    try:
        room = await _join(manager, request.match_info["doc_id"], admitted.access.project_id, peer)
        if room is not None:
            if admitted.source is not None:
                room.declare_source(peer, admitted.source)
            try:
                await _pump(ws, room, peer, app[SETTINGS].max_message_bytes)
            finally:
                await manager.leave(room, peer)
    finally:
        keepalive.forget(peer)
        await peer.stop()
        buckets.release(admitted.user.id)


def _new_peer(
    request: web.Request, ws: web.WebSocketResponse, admitted: _Admitted, bucket: TokenBucket
) -> Peer:
    settings = request.app[SETTINGS]
    limits = PeerLimits(
        rate=settings.updates_per_second,
        burst=settings.update_burst,
        max_queued_bytes=settings.max_queued_bytes_per_connection,
    )
    peer = Peer(
        ws,
        admitted.user,
        admitted.access.role,
        limits,
        user_bucket=bucket,
        transport=request.transport,
    )
    peer.start()
    return peer


async def _join(manager: RoomManager, doc_id: str, project_id: str, peer: Peer) -> Room | None:
    """The document's room with ``peer`` in it, or None once the peer was told why not."""
    try:
        return await manager.join(doc_id, project_id, peer)
    except TooManyPeersError as exc:
        await peer.close(close_codes.TRY_AGAIN_LATER, str(exc))
    except EventStoreError as exc:
        logger.warning("cannot open %s: %s", doc_id, exc)
        await peer.close(close_codes.TRY_AGAIN_LATER, "document unavailable, retry")
    return None


async def _authenticate(request: web.Request) -> User | None:
    """The caller from ``?token=``, or else the session cookie from an allowed Origin.

    A browser sends cookies with a WebSocket upgrade started by any page, so
    a cookie only counts when the page's origin is allowed: another site
    cannot open the user's documents (cross-site WebSocket hijacking).

    Raises:
        OriginRefusedError: the cookie came from a foreign page (close 4403).
    """
    token = _query_parameter(request, "token") or ""
    if not token:
        cookie = session_cookie(request)
        if cookie is None:
            return None
        if not origin_allowed(request):
            raise OriginRefusedError()
        token = cookie
    return await user_of_token(request, token)


def _query_parameter(request: web.Request, name: str) -> str | None:
    """The first ``name`` of the query string, read without ``request.query``.

    ``request.query`` caches a parsed copy of the query (the access token
    included) on the request's URL, which stays alive as long as the socket.
    """
    for key, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
        if key == name:
            return value
    return None


async def _pump(ws: web.WebSocketResponse, room: Room, peer: Peer, max_bytes: int) -> None:
    while True:
        peer.reading = True
        if not await _on_frame(ws, room, peer, max_bytes, await ws.receive()):
            return


async def _on_frame(
    ws: web.WebSocketResponse, room: Room, peer: Peer, max_bytes: int, frame: WSMessage
) -> bool:
    """Handle one frame; False once the connection is over.

    The frame is a local of this call only: held by the pump, the last
    message (often a client's copy of a whole presence update) would stay in
    memory for as long as the connection then stays idle.
    """
    peer.reading = False
    peer.heard(asyncio.get_running_loop().time())
    if frame.type is WSMsgType.BINARY:
        verdict = await _handle(room, peer, frame.data, max_bytes)
        if verdict is not None:
            await peer.close(*verdict)
            return False
    elif frame.type is WSMsgType.PING:
        await ws.pong(frame.data)
    elif frame.type in _CLOSED:
        return False
    elif frame.type is not WSMsgType.PONG:
        await peer.close(close_codes.MALFORMED, "binary y-websocket messages only")
        return False
    return True


async def _handle(room: Room, peer: Peer, data: bytes, max_bytes: int) -> tuple[int, str] | None:
    """Process one frame; return a close code and reason when the peer must go."""
    if len(data) > max_bytes:
        return close_codes.TOO_LARGE, f"message larger than {max_bytes} bytes"
    # Over budget: wait (not reading the socket meanwhile) instead of closing.
    await peer.spend()
    try:
        await room.receive(peer, decode_message(data))
    except ProtocolError as exc:
        logger.info("malformed message from %s: %s", peer.describe(), exc)
        return close_codes.MALFORMED, "malformed message"
    except RoomClosedError:
        return close_codes.INTERNAL, "document reloading"
    except OverloadedError:
        return close_codes.TRY_AGAIN_LATER, "server busy, retry"
    except AccessRevokedError:
        return close_codes.FORBIDDEN, "access revoked"
    return None


async def close_websockets(app: web.Application) -> None:
    """``on_shutdown``: flush and snapshot every room, then close its sockets with 1012."""
    await app[ROOMS].close_all()
    sockets = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=close_codes.RESTARTING, message=b"node shutting down")
