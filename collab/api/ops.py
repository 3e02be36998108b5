"""Operational endpoints: liveness, readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from collab.keys import READINESS_CHECKS, REDIS
from eventstore import EventStoreError
from eventstore.keys import DATABASE

routes = web.RouteTableDef()
# A probe answers within this bound even when the database hangs.
_PROBE_SECONDS = 2.5
# Pings that outlived their probe, kept referenced until they finish.
_LINGERING: set[asyncio.Task[None]] = set()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 while the process runs."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """200 when the database (and Redis, if configured) answer, else 503."""
    checks: dict[str, Any] = {"database": await _database_ok(request.app)}
    if REDIS in request.app:
        checks["redis"] = await _redis_ok(request.app)
    for name, check in request.app.get(READINESS_CHECKS, []):
        checks[name] = check()
    ready = checks["database"] and checks.get("redis", True)
    if ready:
        return web.json_response({"status": "ok", "checks": checks})
    # A 503 is an error response, so it carries the usual JSON error object too.
    failing = sorted(name for name, ok in checks.items() if ok is False)
    error = {
        "code": "service_unavailable",
        "message": f"not ready: {', '.join(failing)} not answering",
        "details": {"checks": checks},
    }
    return web.json_response(
        {"status": "unavailable", "checks": checks, "error": error}, status=503
    )


async def _database_ok(app: web.Application) -> bool:
    # ping() bounds its query at 2 s, but after that timeout asyncpg holds the
    # connection until its cancel request is answered (5 s more on a hung
    # server), so the probe does not wait for the ping to wind down.
    ping = asyncio.ensure_future(app[DATABASE].ping())
    done, _ = await asyncio.wait({ping}, timeout=_PROBE_SECONDS)
    if not done:
        _LINGERING.add(ping)
        ping.add_done_callback(_forget)
        return False
    error = ping.exception()
    if error is not None and not isinstance(error, EventStoreError | TimeoutError):
        raise error
    return error is None


def _forget(task: asyncio.Task[None]) -> None:
    _LINGERING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a failed ping is expected here


async def _redis_ok(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(2.0):
            await app[REDIS].ping()
    except Exception:  # any client failure means "not ready"
        return False
    return True
