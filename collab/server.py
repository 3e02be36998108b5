"""Run one node until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import signal
import socket
import sys

from aiohttp import web

from collab.app import create_app
from collab.config import Settings
from eventstore import EventStoreError

logger = logging.getLogger("collab.server")
# Listen backlog, capped by the kernel at net.core.somaxconn (4096 on current
# Linux). A reconnect storm (every client of a restarted node at once)
# overflowed a backlog of 128, and the overflow showed as connections dropped
# before their upgrade (1006) that clients then had to retry.
_BACKLOG = 65535
# Collector thresholds of a serving node; Python's defaults are (700, 10, 10).
# A node keeps a few dozen objects per open connection for as long as it is
# open, and with the defaults the collector ran young collections every 700
# allocations and, as connections came and went, full ones over all of them:
# about a fifth of the node's CPU in a reconnect storm of 5,000 clients. With
# these, the CPU per reconnect fell from 0.50-0.54 ms to 0.40-0.42 ms in
# alternating runs. The price: garbage in reference cycles waits longer to be
# found (up to 10,000 allocations in the young generation, 20 young
# collections in the middle one), which idle memory per connection does not
# show (3.4 KiB at 10,000 connections before, 3.5 after).
GC_THRESHOLDS = (10_000, 20, 10)


class PortInUseError(Exception):
    """Another process listens on the port."""


def serve(settings: Settings) -> int:
    """Serve until a signal arrives.

    The port is bound before anything else, so a busy port fails at once
    with one line, and "serving on" is only logged once connections are
    really accepted. On SIGTERM/SIGINT a shutdown line is printed, the node
    stops accepting connections, runs the ``on_shutdown`` hooks (WebSockets
    are closed with 1012, event streams end), waits up to
    ``shutdown_timeout`` for in-flight requests, then runs the cleanup
    contexts in reverse (rooms flush and snapshot before the database closes).

    Returns:
        The process exit code.
    """
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        sock = bind(settings.host, settings.port)
    except PortInUseError:
        print(
            f"collab: port {settings.port} on {settings.host} is already in use; choose another"
            f" with --port or COLLAB_PORT (e.g. collab serve --port {settings.port + 1})",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"collab: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    try:
        with asyncio.Runner(loop_factory=lambda: new_event_loop(settings.event_loop)) as runner:
            return runner.run(_run(settings, sock))
    except EventStoreError as exc:
        print(f"collab: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``.

    Raises:
        PortInUseError: the port is taken.
        OSError: any other failure (unknown host, no permission).
    """
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(str(exc)) from None
        raise
    sock.setblocking(False)
    return sock


async def _run(settings: Settings, sock: socket.socket) -> int:
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, sig, stop, received)
    runner = web.AppRunner(
        create_app(settings),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    try:
        # asyncio listens again with the site's backlog (128 unless given).
        await web.SockSite(runner, sock, backlog=_BACKLOG).start()
        host, port = sock.getsockname()[:2]
        logger.info(
            "node %s serving on http://%s:%d (%s)",
            settings.node_id,
            host,
            port,
            "postgres" if settings.is_postgres else "sqlite",
        )
        await stop.wait()
        print(f"collab: {received[0]} received, shutting down", file=sys.stderr, flush=True)
    finally:
        await runner.cleanup()
    logger.info("node %s stopped", settings.node_id)
    return 0


def _on_signal(sig: signal.Signals, stop: asyncio.Event, received: list[str]) -> None:
    received.append(sig.name)
    stop.set()


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """The node's event loop: uvloop when chosen and installed, else asyncio's own.

    uvloop's sockets and callbacks are implemented in C (libuv); the benchmarks
    in docs/benchmarks.md say what it buys.
    """
    if name == "uvloop":
        try:
            import uvloop  # optional: imported only when chosen
        except ImportError:
            logger.warning("uvloop is not installed; using the asyncio event loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
