"""Placeholder until accounts land: lets every request through."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pass-through."""
    return await handler(request)
