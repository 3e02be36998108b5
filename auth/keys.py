"""Typed application and request state owned by the auth package."""

from aiohttp import web

from auth.models import User
from auth.ratelimit import RateLimiter
from auth.tokens import TokenSigner

TOKEN_SIGNER = web.AppKey("auth.token_signer", TokenSigner)
RATE_LIMITER = web.AppKey("auth.rate_limiter", RateLimiter)
CURRENT_USER = web.RequestKey("auth.current_user", User)
