"""Pinging silent connections and dropping dead ones, with one timer for the whole node.

A client that vanished without closing (a laptop lid shut, a cut cable) leaves
a socket that looks open; a proxy between client and node may also cut a
connection on which nothing passed for a minute. So a connection silent for
:data:`PING_AFTER` seconds is pinged, and one that has not answered anything
:data:`DEAD_AFTER` seconds after the ping is dropped. aiohttp's own heartbeat
does the same with a timer, a task and a rescheduled timer per ping on every
connection; with 10,000 silent connections that was about two thirds of an
idle node's CPU (3.1 to 3.4% of a core against 1.1% without any heartbeat).
Here one task sweeps every connection a few times per interval and writes a
ready-made ping frame; connections that talk (the stock client renews its
presence every 15 seconds) are never pinged.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

PING_AFTER = 30.0
DEAD_AFTER = 15.0
# Sweeps per PING_AFTER: a ping goes out at most this share of the interval late.
SWEEPS_PER_INTERVAL = 10


class Pingable(Protocol):
    """What the sweep needs of a connection (implemented by ``Peer``)."""

    heard_at: float
    pinged_at: float | None

    @property
    def reading(self) -> bool:
        """True while the socket is read (False while the client is held back)."""
        ...

    def ping(self, now: float) -> None:
        """Write a ping frame and remember when."""
        ...

    def abort(self) -> None:
        """Drop the connection at once (the client is gone)."""
        ...


class Keepalive:
    """Every watched connection, swept by one task."""

    def __init__(self, ping_after: float | None = None, dead_after: float | None = None) -> None:
        self._ping_after = PING_AFTER if ping_after is None else ping_after
        self._dead_after = DEAD_AFTER if dead_after is None else dead_after
        self._watched: dict[Pingable, None] = {}

    @property
    def watched(self) -> int:
        """How many connections are watched."""
        return len(self._watched)

    def watch(self, connection: Pingable) -> None:
        """Start watching ``connection`` (heard from now)."""
        connection.heard_at = asyncio.get_running_loop().time()
        connection.pinged_at = None
        self._watched[connection] = None

    def forget(self, connection: Pingable) -> None:
        """Stop watching ``connection`` (it closed)."""
        self._watched.pop(connection, None)

    def sweep(self, now: float) -> None:
        """Ping what has been silent too long; drop what did not answer its ping."""
        for connection in list(self._watched):
            if not connection.reading:
                # Busy with a frame (or waiting to be allowed to send): whatever
                # the client sent meanwhile, a pong included, is not read yet.
                connection.heard_at = now
                connection.pinged_at = None
            elif connection.pinged_at is not None:
                if now - connection.pinged_at >= self._dead_after:
                    self.forget(connection)
                    connection.abort()
            elif now - connection.heard_at >= self._ping_after:
                connection.ping(now)

    async def run(self) -> None:
        """Sweep until cancelled."""
        loop = asyncio.get_running_loop()
        pause = self._ping_after / SWEEPS_PER_INTERVAL
        while True:
            await asyncio.sleep(pause)
            self.sweep(loop.time())
