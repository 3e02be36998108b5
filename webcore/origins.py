"""Which browser origins may use this server with the user's cookies, and CORS for them.

A browser attaches cookies to every request for our host, whichever page
started it. So a request authenticated by cookie is only trusted when its
``Origin`` header names a page we serve or one listed in
``COLLAB_ALLOWED_ORIGINS``: this stops cross-site request forgery on REST
and cross-site WebSocket hijacking. With no list, the only allowed origin is
the server's own (the scheme and ``Host`` of the request itself).

The same list drives CORS: a listed origin may call the REST API from its
own pages with credentials; nothing else gets CORS headers.
"""

from __future__ import annotations

from collections.abc import Awaitable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PREFLIGHT_MAX_AGE = "600"
_ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Request-ID"
_ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE"


class OriginPolicy:
    """The origins whose pages may act with a user's cookies.

    Args:
        allowed: normalised origins (``scheme://host[:port]``, lower case, no
            trailing slash); empty means only the server's own origin.
    """

    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        self.allowed = frozenset(allowed)

    def own_origin(self, request: web.Request) -> str:
        """The origin of the server as this request reached it (behind a TLS proxy too)."""
        return f"{request_scheme(request)}://{request.host}".lower()

    def allows(self, request: web.Request) -> bool:
        """True when the request's ``Origin`` is the server's own or a listed one.

        The server's own origin is matched on its host and port only: behind
        a proxy that terminates TLS the page is ``https`` while the request
        reaching us is plain ``http``, and both schemes of our host are ours.
        """
        origin = request.headers.get(hdrs.ORIGIN, "").strip().lower().rstrip("/")
        if not origin or origin == "null":
            return False
        if origin in self.allowed:
            return True
        scheme, sep, host = origin.partition("://")
        return bool(sep) and scheme in ("http", "https") and host == request.host.lower()

    def cors_origin(self, request: web.Request) -> str | None:
        """The origin to echo in CORS headers: only a listed one, never a wildcard."""
        origin = request.headers.get(hdrs.ORIGIN, "").strip().lower().rstrip("/")
        return origin if origin in self.allowed else None


def request_scheme(request: web.Request) -> str:
    """``https`` when the request or the proxy in front of us (``X-Forwarded-Proto``) used TLS.

    Only used to mark cookies ``Secure`` and to build links: a client that
    lies here only hurts itself.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return "https" if request.secure or forwarded == "https" else "http"


ORIGIN_POLICY = web.AppKey("webcore.origin_policy", OriginPolicy)


@web.middleware
def cors_preflight_middleware(
    request: web.Request, handler: Handler
) -> Awaitable[web.StreamResponse]:
    """Answer CORS preflights from listed origins on ``/api/`` (before authentication).

    Returns the next handler's awaitable rather than awaiting it: a waiting
    middleware stays in memory as long as its request, a WebSocket's included.
    """
    if (
        request.method == "OPTIONS"
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
        and _cors_origin(request) is not None
    ):
        return _preflight_answer()
    return handler(request)


async def _preflight_answer() -> web.StreamResponse:
    response = web.Response(status=204)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = _ALLOWED_METHODS
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = _ALLOWED_HEADERS
    response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = _PREFLIGHT_MAX_AGE
    return response


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: CORS headers for listed origins, streams included."""
    origin = _cors_origin(request)
    if origin is None:
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
    response.headers.add(hdrs.VARY, "Origin")


def _cors_origin(request: web.Request) -> str | None:
    policy = request.app.get(ORIGIN_POLICY)
    if policy is None or not request.path.startswith("/api/"):
        return None
    return policy.cors_origin(request)
