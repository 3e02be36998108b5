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

from aiohttp import web

from auth.access import DocumentAccess, account_and_document_access
from auth.cookies import session_cookie
from auth.errors import OriginRefusedError
from auth.middleware import origin_allowed, user_id_of_token
from auth.models import User
from collab.keys import SETTINGS
from collab.realtime import close_codes
from collab.realtime.budgets import TokenBucket
from collab.realtime.keys import KEEPALIVE, ROOMS, USER_BUCKETS, WEBSOCKETS
from collab.realtime.peer import Peer, PeerLimits
from collab.realtime.protocol import ProtocolError, decode_message
from collab.realtime.room import OverloadedError, Room, RoomClosedError
from collab.realtime.rooms import RoomManager, TooManyPeersError
from collab.realtime.upgrade import Detached, accept_key, take_over
from collab.realtime.websocket import CLOSE_TIMEOUT, WebSocketConnection
from collab.realtime.write_guard import AccessRevokedError
from eventstore import EventStoreError
from eventstore.events import is_valid_source
from eventstore.keys import DATABASE

logger = logging.getLogger(__name__)

# permessage-deflate is declined: the 101 answer never names an extension.
# Every browser offers it, and accepting keeps a zlib compressor and
# decompressor per connection (about 100 KiB of the 130 KiB an idle
# connection cost with it, against 27 KiB without), and
# inflating every frame showed in the latency profiles; y-websocket messages
# are small binary CRDT updates that barely compress. The stock y-websocket
# server never negotiates it either.
# Upgrades reading the database at once (below the Postgres pool's 10
# connections, so requests and rooms still get one), and how long one may wait.
ADMISSIONS_AT_ONCE = 8
ADMISSION_WAIT = 30.0


async def ws_handler(request: web.Request) -> web.StreamResponse:
    """Upgrade, then authenticate and join the document's room; the socket is served from then on.

    Returns as soon as the peer has joined (or was refused): from the
    upgrade on, the socket belongs to a ``WebSocketConnection``, not aiohttp
    (see ``collab.realtime.upgrade``).
    """
    settings = request.app[SETTINGS]
    accept = accept_key(request)
    connection = WebSocketConnection(settings.max_message_bytes)
    if not take_over(request, accept, connection):
        return Detached()
    request.app[WEBSOCKETS].add(connection)
    try:
        admitted = await _admit(request)
        if isinstance(admitted, _Refused):
            connection.close(admitted.code, admitted.reason)
        else:
            await _serve(request, connection, admitted)
    except Exception:
        logger.exception("cannot open a connection to %s", request.path)
        connection.close(close_codes.INTERNAL, "internal error")
    return Detached()


@dataclass(frozen=True, slots=True)
class _Admitted:
    user: User
    access: DocumentAccess
    source: str | None


@dataclass(frozen=True, slots=True)
class _Refused:
    code: int
    reason: str


_gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


@contextlib.asynccontextmanager
async def _admission_slot() -> AsyncIterator[None]:
    """One of ``ADMISSIONS_AT_ONCE`` slots for the database read of an upgrade.

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
        user_id = _caller_id(request)
    except OriginRefusedError:
        return _Refused(close_codes.FORBIDDEN, "cookie from a foreign Origin")
    if user_id is None:
        return _Refused(close_codes.UNAUTHORIZED, "missing, invalid or expired token")
    source = _query_parameter(request, "source")
    if source is not None and not is_valid_source(source):
        return _Refused(close_codes.MALFORMED, "source must be 1-64 of [a-z0-9:._-]")
    doc_id = request.match_info["doc_id"]
    try:
        async with _admission_slot():
            found = await account_and_document_access(request.app[DATABASE], user_id, doc_id)
    except (EventStoreError, TimeoutError) as exc:
        logger.warning("cannot admit a connection to %s: %s", request.path, exc)
        return _Refused(close_codes.TRY_AGAIN_LATER, "server busy, retry")
    if found is None:
        return _Refused(close_codes.UNAUTHORIZED, "missing, invalid or expired token")
    user, access = found
    if access is None:
        return _Refused(close_codes.NOT_FOUND, "unknown document")
    return _Admitted(user, access, source)


async def _serve(
    request: web.Request, connection: WebSocketConnection, admitted: _Admitted
) -> None:
    """Join the room, then let the connection hand the peer's messages to it."""
    app = request.app
    buckets = app[USER_BUCKETS]
    peer = _new_peer(request, connection, admitted, buckets.acquire(admitted.user.id))
    app[KEEPALIVE].watch(peer)
    session = _PeerSession(app, peer, admitted.user.id)
    room = await _join(app[ROOMS], request.match_info["doc_id"], admitted.access.project_id, peer)
    if room is not None:
        session.room = room
        if admitted.source is not None:
            room.declare_source(peer, admitted.source)
    connection.attach(session)


class _PeerSession:
    """A joined peer's messages into its room, and its leaving (a ``websocket.Session``)."""

    __slots__ = ("_app", "_user_id", "peer", "room")

    def __init__(self, app: web.Application, peer: Peer, user_id: str) -> None:
        self._app = app
        self._user_id = user_id
        self.peer = peer
        self.room: Room | None = None

    def heard(self) -> None:
        self.peer.heard(asyncio.get_running_loop().time())

    async def receive(self, message: bytes) -> None:
        if self.room is None:
            return  # refused at join and being closed
        verdict = await _handle(self.room, self.peer, message)
        if verdict is not None:
            self.peer.close(*verdict)

    async def closed(self) -> None:
        app, peer = self._app, self.peer
        try:
            if self.room is not None:
                await app[ROOMS].leave(self.room, peer)
        finally:
            app[KEEPALIVE].forget(peer)
            await peer.stop()
            app[USER_BUCKETS].release(self._user_id)


def _new_peer(
    request: web.Request, connection: WebSocketConnection, admitted: _Admitted, bucket: TokenBucket
) -> Peer:
    settings = request.app[SETTINGS]
    limits = PeerLimits(
        rate=settings.updates_per_second,
        burst=settings.update_burst,
        max_queued_bytes=settings.max_queued_bytes_per_connection,
    )
    peer = Peer(connection, admitted.user, admitted.access.role, limits, user_bucket=bucket)
    peer.start()
    return peer


async def _join(manager: RoomManager, doc_id: str, project_id: str, peer: Peer) -> Room | None:
    """The document's room with ``peer`` in it, or None once the peer was told why not."""
    try:
        return await manager.join(doc_id, project_id, peer)
    except TooManyPeersError as exc:
        peer.close(close_codes.TRY_AGAIN_LATER, str(exc))
    except EventStoreError as exc:
        logger.warning("cannot open %s: %s", doc_id, exc)
        peer.close(close_codes.TRY_AGAIN_LATER, "document unavailable, retry")
    return None


def _caller_id(request: web.Request) -> str | None:
    """The caller's account id from ``?token=``, or else the session cookie from an allowed Origin.

    A browser sends cookies with a WebSocket upgrade started by any page, so
    a cookie only counts when the page's origin is allowed: another site
    cannot open the user's documents (cross-site WebSocket hijacking). The
    account itself is read with the caller's access, in one query.

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
    return user_id_of_token(request, token)


def _query_parameter(request: web.Request, name: str) -> str | None:
    """The first ``name`` of the query string, read without ``request.query``.

    ``request.query`` caches a parsed copy of the query (the access token
    included) on the request's URL, which stays alive as long as the socket.
    """
    for key, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
        if key == name:
            return value
    return None


async def _handle(room: Room, peer: Peer, data: bytes) -> tuple[int, str] | None:
    """Process one message; return a close code and reason when the peer must go."""
    # Over budget: wait (the socket stops being read once the inbox is full) instead of closing.
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
    connections = list(sockets)
    for connection in connections:
        connection.close(close_codes.RESTARTING, "node shutting down")
    # Give the clients a moment to answer, so the sockets end cleanly.
    if connections:
        await asyncio.wait(
            [asyncio.ensure_future(c.wait_lost()) for c in connections], timeout=CLOSE_TIMEOUT
        )
