"""Typed request state owned by the auth package."""

from aiohttp import web

from auth.models import User

CURRENT_USER = web.RequestKey("auth.current_user", User)
