"""Prometheus metrics of this process, served at ``GET /metrics``."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REQUEST_SECONDS = Histogram(
    "collab_http_request_seconds", "HTTP request latency", ["method", "route", "status"]
)
WS_CONNECTIONS = Gauge("collab_ws_connections", "Open WebSocket connections")
ROOMS_LOADED = Gauge("collab_rooms_loaded", "Documents held in memory")
EVENTS_APPENDED = Counter("collab_events_appended_total", "Events committed to the log")
COMMIT_SECONDS = Histogram("collab_commit_seconds", "Event-log group commit latency")
RELAY_GAPS = Counter("collab_relay_gaps_total", "Relay gaps repaired from the log")


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text format."""
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
