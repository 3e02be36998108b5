"""Authentication for every route that is not explicitly public.

The middleware verifies the bearer token and loads the caller's account, so
handlers read ``request[CURRENT_USER]`` and never parse headers. Loading the
row on every request means a deleted account's tokens stop working at once.

A browser may authenticate with the ``collab_session`` cookie instead of
the header (see ``auth.cookies``). A cookie rides along with any request to
our host, so a cookie-authenticated request that changes something (any
method but GET, HEAD and OPTIONS) must come from an allowed ``Origin``
(``webcore.origins``), or it is 403 ``origin_refused``: another site cannot
act for the user.

Public routes are named, not guessed: API handlers opt out with
:func:`public`; the operational endpoints, the API docs, static assets and
the WebSocket endpoint (which authenticates from ``?token=`` itself after the
upgrade, so that it can close with 4401) are listed in :data:`PUBLIC_PATHS`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from auth.cookies import session_cookie
from auth.errors import InvalidTokenError, OriginRefusedError, UnauthorizedError
from auth.keys import CURRENT_USER, TOKEN_SIGNER
from auth.models import User
from auth.users import get_user
from eventstore.keys import DATABASE
from webcore.origins import ORIGIN_POLICY, SAFE_METHODS, OriginPolicy

_PUBLIC_ATTR = "__auth_public__"
# Route templates (``resource.canonical``) that need no token.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/ws/{doc_id}"})
# Whole trees that need no token: Swagger UI, its assets and the spec.
PUBLIC_TREES = ("/api/docs",)

_H = TypeVar("_H")


def public(handler: _H) -> _H:
    """Mark a handler as reachable without a token (register, login, refresh)."""
    setattr(handler, _PUBLIC_ATTR, True)
    return handler


def is_public(request: web.Request) -> bool:
    """True when the matched route needs no token."""
    info = request.match_info
    if info.http_exception is not None:
        return True  # no such route or method: let the router answer 404/405
    if getattr(info.handler, _PUBLIC_ATTR, False):
        return True
    resource = info.route.resource
    if resource is None or isinstance(resource, web.StaticResource):
        return True
    path = resource.canonical
    return path in PUBLIC_PATHS or any(
        path == tree or path.startswith(tree + "/") for tree in PUBLIC_TREES
    )


@web.middleware
def auth_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Put the authenticated caller on the request, or answer 401.

    A public route gets the next handler's awaitable rather than a wait for
    it: a waiting middleware stays in memory as long as its request, a
    WebSocket's included.
    """
    if is_public(request):
        return handler(request)
    return _authenticated(request, handler)


async def _authenticated(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[CURRENT_USER] = await authenticate(request)
    return await handler(request)


async def authenticate(request: web.Request) -> User:
    """The account named by the request's bearer token, or else its session cookie.

    Raises:
        UnauthorizedError: no token, or one that is invalid or expired, or
            whose account no longer exists.
        OriginRefusedError: a cookie-authenticated unsafe request from a
            foreign origin.
    """
    token = bearer_token(request)
    if token is None:
        token = session_cookie(request)
        if token is None:
            raise UnauthorizedError("a bearer access token or a session cookie is required")
        if request.method not in SAFE_METHODS and not origin_allowed(request):
            raise OriginRefusedError()
    try:
        claims = request.app[TOKEN_SIGNER].verify_access(token)
    except InvalidTokenError as exc:
        raise _rejected(str(exc)) from None
    user = await get_user(request.app[DATABASE], claims.user_id)
    if user is None:
        raise _rejected("the account no longer exists")
    return user


def user_id_of_token(request: web.Request, token: str) -> str | None:
    """The account id a valid access token names, or None (the account is not read)."""
    try:
        return request.app[TOKEN_SIGNER].verify_access(token).user_id
    except InvalidTokenError:
        return None


def origin_allowed(request: web.Request) -> bool:
    """Whether the request's ``Origin`` may act with the user's cookies."""
    policy = request.app.get(ORIGIN_POLICY) or OriginPolicy()
    return policy.allows(request)


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _rejected(message: str) -> UnauthorizedError:
    error = UnauthorizedError(message)
    # RFC 6750 §3.1: a presented but unusable token is "invalid_token".
    error.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="collab", error="invalid_token"'
    return error
