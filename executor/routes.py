"""Routes of this area (filled in by its issue)."""

from aiohttp import web

routes = web.RouteTableDef()
