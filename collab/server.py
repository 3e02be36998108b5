"""Run one node until SIGTERM/SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from collab.app import create_app
from collab.config import Settings
from eventstore import EventStoreError

logger = logging.getLogger("collab.server")


def serve(settings: Settings) -> int:
    """Serve until a signal arrives.

    On SIGTERM/SIGINT aiohttp stops accepting connections, runs the
    ``on_shutdown`` hooks (WebSockets are closed with 1012), waits up to
    ``shutdown_timeout`` for in-flight requests, then runs the cleanup
    contexts in reverse (rooms flush and snapshot before the database closes).

    Returns:
        The process exit code.
    """
    logger.info(
        "node %s serving on http://%s:%d (%s)",
        settings.node_id,
        settings.host,
        settings.port,
        "postgres" if settings.is_postgres else "sqlite",
    )
    try:
        web.run_app(
            create_app(settings),
            loop=new_event_loop(settings.event_loop),
            host=settings.host,
            port=settings.port,
            shutdown_timeout=settings.shutdown_timeout,
            print=None,
            access_log=None,
            handle_signals=True,
        )
    except EventStoreError as exc:
        print(f"collab: cannot start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0


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
