"""The client's address behind trusted reverse proxies.

Behind a load balancer every request comes from the balancer, so per-address
limits (login, registration) would lump all users together. When the peer is
one of ``COLLAB_TRUSTED_PROXIES``, the client is the right-most address of
``X-Forwarded-For`` that is not itself a trusted proxy. The header is never
believed from anyone else: a client could write any address into it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

from collab.config import Network
from collab.keys import SETTINGS


def client_address(peer: str | None, forwarded_for: str, trusted: Sequence[Network]) -> str | None:
    """The client's address given the peer and its ``X-Forwarded-For`` header."""
    if peer is None or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


@web.middleware
def forwarded_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Replace ``request.remote`` with the client's address behind trusted proxies.

    Returns the next handler's awaitable rather than awaiting it: a waiting
    middleware stays in memory as long as its request, a WebSocket's included.
    """
    trusted = request.app[SETTINGS].trusted_proxies
    if trusted:
        remote = client_address(request.remote, request.headers.get("X-Forwarded-For", ""), trusted)
        if remote is not None and remote != request.remote:
            request = request.clone(remote=remote)
    return handler(request)
