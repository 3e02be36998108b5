"""The OpenAPI 3 document and Swagger UI, built by aiohttp-apigami.

Routes declare their own schemas and success responses. Once every route is
registered, :func:`complete_spec` adds what is true of all of them, so the
document says exactly what the server answers and accepts: the error
statuses the middlewares can give any route (with the one error shape), that
a declared JSON body is required (an empty body is a 400), and the
``oneOf`` shapes of bodies whose fields are mutually exclusive.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import setup_aiohttp_apispec
from aiohttp_apigami.constants import SWAGGER_DICT

from collab import __version__
from webcore.openapi_errors import ERROR_SCHEMA

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
    app.on_startup.append(_complete_on_startup)  # after apigami's own startup scan


async def _complete_on_startup(app: web.Application) -> None:
    complete_spec(app[SWAGGER_DICT], public=public_operations(app))


def public_operations(app: web.Application) -> set[tuple[str, str]]:
    """``(method, path)`` of the routes that need no token (lower-case method)."""
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is not None and getattr(route.handler, "__auth_public__", False):
            found.add((route.method.lower(), resource.canonical))
    return found


# Statuses any route can answer: malformed or missing body (400), no or bad
# token (401), role too low (403), unknown or invisible resource (404), a
# conflict with the current state (409), body over the limit (413), invalid
# fields (422), rate limited (429), a dependency away (503).
STANDARD_ERRORS: dict[int, str] = {
    400: "The body is missing, not JSON, or nested too deeply.",
    401: "No valid access token.",
    403: "The caller's role does not allow this.",
    404: "Not found, or not visible to the caller.",
    409: "The request conflicts with the current state.",
    413: "The body is larger than allowed.",
    422: "Some fields are invalid; `details` names each one.",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A dependency (database, Redis, job queue) is unavailable.",
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")

OPTIONAL_BODIES = {("post", "/api/auth/refresh"), ("post", "/api/auth/logout")}

# Bodies whose fields come in exclusive groups: (method, path) -> the
# properties each alternative allows and requires. The server refuses a
# mixture (422), so the document offers each shape on its own.
ONE_OF_BODIES: dict[tuple[str, str], list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    ("post", "/api/jobs"): [
        (("document_id", "stdin", "timeout_ms"), ("document_id",)),
        (
            ("project_id", "language", "source", "stdin", "timeout_ms"),
            ("project_id", "language", "source"),
        ),
    ],
}


def complete_spec(
    spec: dict[str, Any], *, public: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset()
) -> None:
    """Add the standard errors, required bodies and exclusive body shapes to ``spec``.

    Args:
        spec: the OpenAPI document, changed in place.
        public: ``(method, path)`` of the operations that need no token (no 401).
    """
    spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            add_error_responses(operation, public=(method, path) in public)
            body = operation.get("requestBody")
            if body is not None:
                # Refresh and logout may send no body: the refresh cookie stands in.
                body["required"] = (method, path) not in OPTIONAL_BODIES
                shapes = ONE_OF_BODIES.get((method, path))
                if shapes is not None:
                    _split_body(spec, body, shapes)


def add_error_responses(operation: dict[str, Any], *, public: bool = False) -> None:
    """Document every standard error status on one operation (keeping route-specific text)."""
    responses = operation.setdefault("responses", {})
    for status, description in STANDARD_ERRORS.items():
        if public and status == 401:
            continue
        entry = responses.setdefault(str(status), responses.pop(status, None) or {})
        entry.setdefault("description", description)
        entry["content"] = {"application/json": {"schema": _ERROR_REF}}
    for status, entry in responses.items():  # route-specific ones, such as a login's 401
        if str(status)[:1] in ("4", "5"):
            entry["content"] = {"application/json": {"schema": _ERROR_REF}}


def _split_body(
    spec: dict[str, Any],
    body: dict[str, Any],
    shapes: list[tuple[tuple[str, ...], tuple[str, ...]]],
) -> None:
    media = body["content"]["application/json"]
    ref = media["schema"].get("$ref", "")
    whole = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    properties = whole["properties"]
    media["schema"] = {
        "oneOf": [
            {
                "type": "object",
                "properties": {name: properties[name] for name in allowed},
                "required": list(required),
                "additionalProperties": False,
            }
            for allowed, required in shapes
        ]
    }
