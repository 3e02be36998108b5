"""The WebSocket opening handshake, and taking the socket from aiohttp after it.

aiohttp parses the upgrade request and runs it through the middlewares and
the route like any other; the handler then checks the handshake (RFC 6455
4.2.1), writes the 101 answer itself and hands the socket to a
:class:`~collab.realtime.websocket.WebSocketConnection`. aiohttp is told the
connection is gone, so it lets go of its request handler, the request and
their tasks, and the handler's own response writes nothing.

This reaches into three attributes of aiohttp's request handler (the bytes
the client sent after its upgrade request, its transport and its task): the
tests of ``tests/realtime/test_websocket_layer.py`` fail if a new aiohttp changes
them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from aiohttp import hdrs, web
from multidict import CIMultiDict

from collab.realtime.websocket import WebSocketConnection

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_VERSION = "13"


def accept_key(request: web.Request) -> str:
    """The ``Sec-WebSocket-Accept`` answer to a valid upgrade request.

    Raises:
        web.HTTPBadRequest: not a WebSocket upgrade, or a malformed key.
        web.HTTPUpgradeRequired: a WebSocket version other than 13.
    """
    headers = request.headers
    if "websocket" not in headers.get(hdrs.UPGRADE, "").lower():
        raise web.HTTPBadRequest(text="expected a WebSocket upgrade")
    connection = {token.strip() for token in headers.get(hdrs.CONNECTION, "").lower().split(",")}
    if "upgrade" not in connection:
        raise web.HTTPBadRequest(text="expected Connection: upgrade")
    if headers.get(hdrs.SEC_WEBSOCKET_VERSION, "") != _VERSION:
        raise web.HTTPUpgradeRequired(
            headers=CIMultiDict({hdrs.SEC_WEBSOCKET_VERSION: _VERSION}),
            text="WebSocket version 13 only",
        )
    key = headers.get(hdrs.SEC_WEBSOCKET_KEY, "").strip()
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid = False
    if not valid:
        raise web.HTTPBadRequest(text="malformed Sec-WebSocket-Key")
    digest = hashlib.sha1(key.encode() + _GUID).digest()  # noqa: S324 (the handshake's hash)
    return base64.b64encode(digest).decode()


def take_over(request: web.Request, accept: str, connection: WebSocketConnection) -> bool:
    """Answer 101 and give the socket to ``connection``; False if the client is gone."""
    protocol: Any = request.protocol
    transport = request.transport
    if transport is None or transport.is_closing():
        return False
    transport.write(
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n"
    )
    tail: bytes = protocol._message_tail
    protocol._message_tail = b""
    # aiohttp must neither write to nor close a socket it no longer reads,
    # and, told the connection is lost, must not cancel this very handler
    # (which it does when ``handler_cancellation`` is on, as in its tests).
    protocol.transport = None
    protocol._task_handler = None
    protocol.connection_lost(None)
    transport.set_protocol(connection)
    connection.connection_made(transport)
    transport.resume_reading()  # aiohttp may have paused it
    if tail:
        connection.data_received(tail)
    return True


class Detached(web.StreamResponse):
    """What the handler returns once the socket is no longer aiohttp's: nothing to write."""

    def __init__(self) -> None:
        super().__init__(status=101)
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None
