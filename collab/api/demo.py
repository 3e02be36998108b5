"""The browser editor demo: ``GET /`` and its static assets under ``/demo/``.

The page is built from ``demo/`` (CodeMirror, Yjs, y-websocket) into
``collab/static/demo``, which is committed and shipped in the wheel, so the
server needs no Node.js at run time. Both routes are public: the page signs in
through the REST API itself.

The Content-Security-Policy lets the page run only its own script, talk only to
its own origin and to WebSockets. CodeMirror puts its generated styles in a
``<style>`` element, which carries a fresh per-response nonce (the page reads
it from a ``<meta>`` tag); inline ``style`` attributes stay allowed because
the editor and the remote-cursor widgets position and colour elements with them.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from aiohttp import hdrs, web

STATIC_DIR = Path(__file__).parents[1] / "static" / "demo"
STATIC_PREFIX = "/demo"
# The placeholder in index.html that each response replaces with its nonce.
NONCE_PLACEHOLDER = "%CSP_NONCE%"

DEMO_PAGE = web.AppKey("collab.demo_page", str)

# Assets requested with ``?v=<content hash>`` (as the page does) never change.
_VERSIONED_CACHE = "public, max-age=31536000, immutable"

routes = web.RouteTableDef()


def content_security_policy(nonce: str) -> str:
    """The page's policy, with ``nonce`` allowing CodeMirror's style element."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self' ws: wss:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


@routes.get("/", name="demo")
async def index(request: web.Request) -> web.Response:
    """The single-page editor."""
    page = request.app.get(DEMO_PAGE)
    if page is None:
        raise web.HTTPNotFound(text="the demo is not built (cd demo && node build.mjs)")
    nonce = secrets.token_urlsafe(18)
    return web.Response(
        text=page.replace(NONCE_PLACEHOLDER, nonce),
        content_type="text/html",
        headers={
            "Content-Security-Policy": content_security_policy(nonce),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            # The page names its assets by content hash, so it must always be fresh.
            hdrs.CACHE_CONTROL: "no-store",
        },
    )


# No index listing and no symlinks; aiohttp resolves every path and refuses
# anything outside the directory, so ``..`` cannot escape it.
routes.static(STATIC_PREFIX, STATIC_DIR, name="demo_static", show_index=False)


async def _asset_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.path.startswith(STATIC_PREFIX + "/") or response.status >= 400:
        return
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers[hdrs.CACHE_CONTROL] = _VERSIONED_CACHE if "v" in request.query else "no-cache"


def setup_demo(app: web.Application) -> None:
    """Serve the demo page at ``/`` and its assets under ``/demo/``.

    The page is read once here; without a built bundle ``/`` answers 404.
    """
    index_file = STATIC_DIR / "index.html"
    if index_file.is_file():
        app[DEMO_PAGE] = index_file.read_text(encoding="utf-8")
    app.add_routes(routes)
    app.on_response_prepare.append(_asset_headers)
