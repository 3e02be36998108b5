"""The browser session as cookies: the access token and the refresh token.

A browser editor cannot put a bearer header on a WebSocket, and the stock
y-websocket client keeps the ``?token=`` it was built with, so after a long
disconnect it would reconnect with an expired token for ever. With the access
token in an HttpOnly cookie, a page refreshes it (``POST /api/auth/refresh``
with an empty body sends the refresh cookie) and every reconnect carries the
fresh one.

* ``collab_session``: the access token; ``Path=/``; lives as long as the token.
* ``collab_refresh``: the refresh token; ``Path=/api/auth``, so it only ever
  travels to the auth routes; lives as long as the refresh token.

Both are HttpOnly (page scripts cannot read them) and ``SameSite=Lax``; they
are ``Secure`` when the request came over HTTPS (directly, or through a
proxy that says so with ``X-Forwarded-Proto: https``). Requests authenticated by
cookie are also checked against the allowed origins (see
``webcore.origins``).
"""

from __future__ import annotations

from aiohttp import web

from auth.sessions import TokenPair
from webcore.origins import request_scheme

SESSION_COOKIE = "collab_session"
REFRESH_COOKIE = "collab_refresh"
REFRESH_PATH = "/api/auth"
_SAME_SITE = "Lax"


def set_session_cookies(
    request: web.Request, response: web.StreamResponse, pair: TokenPair, refresh_ttl: int
) -> None:
    """Put ``pair`` into the two session cookies of ``response``."""
    secure = request_scheme(request) == "https"
    response.set_cookie(
        SESSION_COOKIE,
        pair.access_token,
        path="/",
        max_age=pair.expires_in,
        httponly=True,
        secure=secure,
        samesite=_SAME_SITE,
    )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        path=REFRESH_PATH,
        max_age=refresh_ttl,
        httponly=True,
        secure=secure,
        samesite=_SAME_SITE,
    )


def clear_session_cookies(response: web.StreamResponse) -> None:
    """Expire both session cookies (logout)."""
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(REFRESH_COOKIE, path=REFRESH_PATH)


def session_cookie(request: web.Request) -> str | None:
    """The access token of the session cookie, if the request carries one."""
    return request.cookies.get(SESSION_COOKIE) or None


def refresh_cookie(request: web.Request) -> str | None:
    """The refresh token of the refresh cookie, if the request carries one."""
    return request.cookies.get(REFRESH_COOKIE) or None
