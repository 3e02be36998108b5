"""The OpenAPI 3 document and Swagger UI, built by aiohttp-apigami."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import setup_aiohttp_apispec

from collab import __version__

SPEC_URL = "/api/docs/openapi.json"
UI_PATH = "/api/docs"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
PUBLIC: list[dict[str, list[str]]] = []

_DESCRIPTION = """Real-time collaboration server for code.

Try it: **POST /api/auth/register**, copy `access_token`, click **Authorize**
and paste it, then **POST /api/projects**. Errors are always
`{"error": {"code", "message", "details"}}`. The real-time endpoint is
`ws://HOST:PORT/ws/{doc_id}?token=ACCESS_TOKEN` (y-websocket protocol)."""


def setup_openapi(app: web.Application) -> None:
    """Register the spec endpoint and Swagger UI; routes are scanned at startup."""
    api = setup_aiohttp_apispec(
        app,
        title="collab",
        version=__version__,
        openapi_version="3.0.3",
        url=SPEC_URL,
        swagger_path=UI_PATH,
        static_path="/api/docs/static",
        info={"description": _DESCRIPTION},
        security=BEARER,
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
