"""Request id, access log and the one place that renders errors as JSON."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Histogram

logger = logging.getLogger("collab.http")
access_logger = logging.getLogger("collab.access")

REQUEST_ID = web.RequestKey("webcore.request_id", str)
REQUEST_SECONDS = Histogram(
    "collab_http_request_seconds", "HTTP request latency", ["method", "route", "status"]
)
_REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The JSON error body: ``{"error": {"code", "message", "details"}}``."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return web.json_response(body, status=status, headers=headers)


def _is_domain_error(exc: Exception) -> bool:
    return isinstance(getattr(exc, "status", None), int) and isinstance(
        getattr(exc, "code", None), str
    )


def _render_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400 or exc.content_type == "application/json":
        return exc
    code = _REASONS.get(exc.status, "http_error")
    message = exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text
    kept = ("Allow", "Retry-After", "Sec-WebSocket-Version")
    headers = {k: v for k, v in exc.headers.items() if k in kept}
    return error_response(exc.status, code, message, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render domain errors and unexpected failures as JSON, never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        return _render_http_exception(exc)
    except Exception as exc:
        if _is_domain_error(exc):
            status: int = getattr(exc, "status")  # noqa: B009
            if status >= 500:
                logger.warning("%s %s: %s", request.method, request.path, exc)
            return error_response(
                status,
                getattr(exc, "code"),  # noqa: B009
                str(exc),
                getattr(exc, "details", None),
                getattr(exc, "headers", None),
            )
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag each request with an id (the client's ``X-Request-ID`` if sane) and log it."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = (
        incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    )
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource
        REQUEST_SECONDS.labels(
            request.method, route.canonical if route else "unmatched", str(status)
        ).observe(elapsed)
        access_logger.info(
            "%s %s %s %.1fms id=%s",
            request.method,
            request.path,
            status,
            elapsed * 1000,
            request_id,
        )
