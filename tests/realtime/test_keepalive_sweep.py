"""The keep-alive sweep: pings silent connections, drops dead ones, leaves the others alone."""

from __future__ import annotations

import asyncio

from collab.realtime.keepalive import SWEEPS_PER_INTERVAL, Keepalive

PING_AFTER = 30.0
DEAD_AFTER = 15.0
PAUSE = PING_AFTER / SWEEPS_PER_INTERVAL


class Connection:
    """A connection as the sweep sees it, recording what was done to it."""

    def __init__(self) -> None:
        self.heard_at = 0.0
        self.pinged_at: float | None = None
        self.pings: list[float] = []
        self.aborts = 0
        self.looked_at = 0
        self.is_reading = True

    @property
    def reading(self) -> bool:
        self.looked_at += 1
        return self.is_reading

    def ping(self, now: float) -> None:
        self.pinged_at = now
        self.pings.append(now)

    def abort(self) -> None:
        self.aborts += 1

    def heard(self, now: float) -> None:
        self.heard_at = now
        self.pinged_at = None


def _sweep_until(keepalive: Keepalive, start: float, end: float) -> None:
    """Sweep every PAUSE from ``start`` up to ``end``, as the task does."""
    moment = start
    while moment <= end:
        keepalive.sweep(moment)
        moment += PAUSE


def _watched(count: int = 1) -> tuple[Keepalive, list[Connection], float]:
    keepalive = Keepalive(PING_AFTER, DEAD_AFTER)
    connections = [Connection() for _ in range(count)]
    for connection in connections:
        keepalive.watch(connection)
    return keepalive, connections, asyncio.get_running_loop().time()


async def test_a_silent_connection_is_pinged_then_dropped() -> None:
    keepalive, [connection], start = _watched()
    _sweep_until(keepalive, start + PAUSE, start + PING_AFTER - PAUSE)
    assert connection.pings == []
    _sweep_until(keepalive, start + PING_AFTER, start + PING_AFTER + 2 * PAUSE)
    assert len(connection.pings) == 1
    assert start + PING_AFTER <= connection.pings[0] <= start + PING_AFTER + 2 * PAUSE
    assert connection.aborts == 0
    pinged = connection.pings[0]
    _sweep_until(keepalive, pinged + PAUSE, pinged + DEAD_AFTER + 2 * PAUSE)
    assert connection.aborts == 1
    assert len(connection.pings) == 1
    assert keepalive.watched == 0


async def test_a_connection_that_talks_is_never_pinged() -> None:
    keepalive, [connection], start = _watched()
    moment = start
    while moment < start + 10 * PING_AFTER:
        moment += PAUSE
        if round((moment - start) / PAUSE) % 5 == 0:  # a message every 15 s
            connection.heard(moment)
        keepalive.sweep(moment)
    assert connection.pings == []
    assert connection.aborts == 0


async def test_an_answered_ping_keeps_the_connection() -> None:
    keepalive, [connection], start = _watched()
    _sweep_until(keepalive, start + PAUSE, start + PING_AFTER + PAUSE)
    assert len(connection.pings) == 1
    connection.heard(connection.pings[0] + 0.1)  # the pong
    _sweep_until(keepalive, start + PING_AFTER + 2 * PAUSE, start + PING_AFTER + DEAD_AFTER + PAUSE)
    assert connection.aborts == 0


async def test_a_connection_not_being_read_is_not_pinged() -> None:
    keepalive, [connection], start = _watched()
    connection.is_reading = False
    _sweep_until(keepalive, start + PAUSE, start + 3 * PING_AFTER)
    assert connection.pings == []
    assert connection.aborts == 0
    assert connection.heard_at > start


async def test_a_forgotten_connection_is_left_alone() -> None:
    keepalive, [connection], start = _watched()
    keepalive.forget(connection)
    _sweep_until(keepalive, start + PAUSE, start + 3 * PING_AFTER)
    assert connection.pings == []
    assert connection.looked_at == 0
    assert keepalive.watched == 0
