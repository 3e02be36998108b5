"""The application shell: JSON errors, request ids, operations endpoints, OpenAPI
coverage, behaviour while the database is down, and graceful shutdown.

The first half drives an in-process app (``client``, once per database backend).
The second half runs real ``collab serve`` processes (``tests/support/nodes.py``)
with a TCP proxy (``tests/support/tcpproxy.py``) between the node and Postgres
or Redis, because an outage and a SIGTERM are only real in a real process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import marshmallow
import pytest
from aiohttp import web
from aiohttp_apigami import request_schema, response_schema
from pytest_aiohttp import AiohttpClient

from auth.middleware import public
from collab.app import create_app
from collab.config import Settings
from tests.conftest import TEST_SECRET, Client
from tests.support.nodes import RunningNode, running_node
from tests.support.tcpproxy import ProxyMode, TcpProxy
from webcore.validation import body

pytestmark = pytest.mark.timeout(60)

# POST/PUT/PATCH routes of the public API that take no body.
BODYLESS = {
    ("POST", "/api/jobs/{job_id}/cancel"),
    ("POST", "/api/documents/{doc_id}/undelete"),
    ("POST", "/api/invites/{token}/accept"),
}
# Every public REST route (operations and the demo page aside).
PUBLIC_ROUTES = {
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/me"),
    ("POST", "/api/projects"),
    ("GET", "/api/projects"),
    ("GET", "/api/projects/{project_id}"),
    ("PATCH", "/api/projects/{project_id}"),
    ("DELETE", "/api/projects/{project_id}"),
    ("GET", "/api/projects/{project_id}/members"),
    ("POST", "/api/projects/{project_id}/members"),
    ("PATCH", "/api/projects/{project_id}/members/{user_id}"),
    ("DELETE", "/api/projects/{project_id}/members/{user_id}"),
    ("POST", "/api/projects/{project_id}/documents"),
    ("GET", "/api/projects/{project_id}/documents"),
    ("GET", "/api/documents/{doc_id}"),
    ("PATCH", "/api/documents/{doc_id}"),
    ("DELETE", "/api/documents/{doc_id}"),
    ("GET", "/api/documents/{doc_id}/content"),
    ("GET", "/api/documents/{doc_id}/state"),
    ("GET", "/api/documents/{doc_id}/history"),
    ("POST", "/api/documents/{doc_id}/restore"),
    ("GET", "/api/documents/{doc_id}/blame"),
    ("GET", "/api/documents/{doc_id}/changes"),
    ("POST", "/api/documents/{doc_id}/fork"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/{job_id}"),
    ("GET", "/api/projects/{project_id}/jobs"),
    ("GET", "/api/jobs/{job_id}/events"),
    ("POST", "/api/jobs/{job_id}/cancel"),
}
LOGIN = {"email": "nobody@example.com", "password": "not-the-password"}


def assert_error_shape(data: Any, code: str | None = None) -> None:
    """``{"error": {"code": snake_case, "message": str, "details": {}}}``."""
    assert isinstance(data, dict) and isinstance(data.get("error"), dict), data
    error = data["error"]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    if code is not None:
        assert error["code"] == code, error


# --- a test-only route, to exercise body handling independent of any feature ---


class _EchoSchema(marshmallow.Schema):
    name = marshmallow.fields.String(required=True, validate=marshmallow.validate.Length(min=1))
    count = marshmallow.fields.Integer(load_default=1)


@public
@request_schema(_EchoSchema)
@response_schema(_EchoSchema, 200)
async def _echo(request: web.Request) -> web.Response:
    return web.json_response(body(request))


BODY_LIMIT = 1024


@pytest.fixture
async def echo_client(settings: Settings, aiohttp_client: AiohttpClient) -> Client:
    app = create_app(dataclasses.replace(settings, max_body_bytes=BODY_LIMIT))
    app.router.add_post("/api/test/echo", _echo)
    return await aiohttp_client(app)


# --- errors ---------------------------------------------------------------------


async def test_unknown_route_is_json_404(client: Client) -> None:
    response = await client.get("/api/no/such/thing")
    assert response.status == 404
    assert response.content_type == "application/json"
    assert_error_shape(await response.json(), "not_found")


async def test_wrong_method_is_json_405(client: Client) -> None:
    response = await client.delete("/healthz")
    assert response.status == 405
    assert_error_shape(await response.json(), "method_not_allowed")
    assert "GET" in response.headers["Allow"]


async def test_valid_body_reaches_the_handler(echo_client: Client) -> None:
    response = await echo_client.post("/api/test/echo", json={"name": "x"})
    assert response.status == 200
    assert await response.json() == {"name": "x", "count": 1}


@pytest.mark.parametrize(
    "raw",
    [b"", b"{not json", b'{"name": "x"', b"\xff\xfe\x00", b"null x"],
    ids=["empty", "garbage", "truncated", "not-utf8", "trailing"],
)
async def test_non_json_body_is_400(echo_client: Client, raw: bytes) -> None:
    response = await echo_client.post(
        "/api/test/echo", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_error_shape(await response.json(), "bad_request")


async def test_invalid_fields_are_422_naming_each_field(echo_client: Client) -> None:
    response = await echo_client.post("/api/test/echo", json={"name": "", "count": "many"})
    assert response.status == 422
    data = await response.json()
    assert_error_shape(data, "validation_failed")
    assert set(data["error"]["details"]) == {"name", "count"}


@pytest.mark.parametrize("payload", [[1, 2], "text", 3], ids=["list", "string", "number"])
async def test_json_that_is_not_an_object_is_422(echo_client: Client, payload: Any) -> None:
    response = await echo_client.post("/api/test/echo", json=payload)
    assert response.status == 422
    assert_error_shape(await response.json(), "validation_failed")


async def test_body_over_the_limit_is_json_413(echo_client: Client) -> None:
    big = {"name": "x" * (BODY_LIMIT * 2)}
    response = await echo_client.post("/api/test/echo", json=big)
    assert response.status == 413
    assert_error_shape(await response.json(), "payload_too_large")


async def test_chunked_body_over_the_limit_is_json_413(echo_client: Client) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(4):
            yield b"x" * BODY_LIMIT
        yield b'"}'

    response = await echo_client.post(
        "/api/test/echo", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert_error_shape(await response.json(), "payload_too_large")


async def test_real_route_rejects_non_json_with_400(client: Client) -> None:
    response = await client.post(
        "/api/auth/login", data=b"email=a", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_error_shape(await response.json(), "bad_request")


# --- request ids --------------------------------------------------------------------


async def test_every_response_carries_a_request_id(client: Client) -> None:
    ids = set()
    for path in ("/healthz", "/readyz", "/api/no/such/thing", "/api/docs/openapi.json"):
        response = await client.get(path)
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), path
        ids.add(response.headers["X-Request-ID"])
    assert len(ids) == 4


async def test_a_sane_client_request_id_is_kept(client: Client) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert response.headers["X-Request-ID"] == "trace-42"


async def test_an_oversized_client_request_id_is_replaced(client: Client) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


# --- operations ---------------------------------------------------------------------


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_reports_its_checks(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    data = await response.json()
    assert data["status"] == "ok"
    assert data["checks"]["database"] is True
    assert "redis" not in data["checks"]  # no Redis configured: not a dependency


async def test_metrics_are_prometheus_text(client: Client) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert "# TYPE collab_http_request_seconds histogram" in text
    assert re.search(r'collab_http_request_seconds_count\{[^}]*route="/healthz"', text)


async def test_swagger_ui_is_html(client: Client) -> None:
    response = await client.get("/api/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "swagger" in (await response.text()).lower()


async def test_openapi_document(client: Client) -> None:
    response = await client.get("/api/docs/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert {"bearerAuth": []} in spec["security"]


# --- OpenAPI coverage -----------------------------------------------------------------


async def _spec_and_routes(client: Client) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    spec: dict[str, Any] = await (await client.get("/api/docs/openapi.json")).json()
    routes = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and not route.resource.canonical.startswith("/api/docs")
        and route.method not in ("HEAD", "OPTIONS")
    }
    return spec, routes


def _has_schema(entry: dict[str, Any]) -> bool:
    content = entry.get("content", {})
    return any("schema" in media for media in content.values())


async def test_every_api_route_is_described_with_schemas(client: Client) -> None:
    """Each ``/api`` route: in the spec, with a request body schema where it takes a
    body, and a schema for at least one success response (204 has no body)."""
    spec, routes = await _spec_and_routes(client)
    problems = []
    for method, path in sorted(routes, key=lambda r: (r[1], r[0])):
        operation = spec["paths"].get(path, {}).get(method.lower())
        if operation is None:
            problems.append(f"{method} {path}: missing from the OpenAPI document")
            continue
        takes_body = method in ("POST", "PUT", "PATCH") and (method, path) not in BODYLESS
        if takes_body and not _has_schema(operation.get("requestBody", {})):
            problems.append(f"{method} {path}: no requestBody schema")
        successes = {
            code: entry
            for code, entry in operation.get("responses", {}).items()
            if str(code).startswith("2")
        }
        if not any(code == "204" or _has_schema(e) for code, e in successes.items()):
            problems.append(f"{method} {path}: no response schema for a 2xx status")
    assert not problems, "routes not fully described in OpenAPI:\n" + "\n".join(problems)


async def test_every_public_route_is_registered(client: Client) -> None:
    _, routes = await _spec_and_routes(client)
    missing = sorted(PUBLIC_ROUTES - routes, key=lambda r: (r[1], r[0]))
    assert not missing, "public routes not registered:\n" + "\n".join(
        f"{m} {p}" for m, p in missing
    )


# --- real processes: outages ------------------------------------------------------------


def via_proxy(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.address}" if userinfo else proxy.address
    return urlunsplit(parts._replace(netloc=netloc))


@asynccontextmanager
async def proxied(url: str, default_port: int) -> AsyncIterator[tuple[TcpProxy, str]]:
    parts = urlsplit(url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port) as proxy:
        yield proxy, via_proxy(url, proxy)


async def call(
    http: aiohttp.ClientSession, method: str, path: str, payload: Any = None
) -> tuple[int, Any]:
    async with http.request(method, path, json=payload) as response:
        return response.status, await response.json()


async def eventually(
    http: aiohttp.ClientSession, method: str, path: str, status: int, payload: Any = None
) -> Any:
    """Retry until the node answers ``status`` (pools reconnect on the next use)."""
    last: tuple[int, Any] = (0, None)
    try:
        async with asyncio.timeout(15):
            while True:
                last = await call(http, method, path, payload)
                if last[0] == status:
                    return last[1]
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"{method} {path} still answers {last} instead of {status}")


@pytest.mark.postgres
@pytest.mark.parametrize("mode", [ProxyMode.RESET, ProxyMode.CLOSED], ids=lambda m: m.value)
async def test_database_outage_is_503_and_the_node_recovers(
    postgres_url: str, mode: ProxyMode
) -> None:
    async with proxied(postgres_url, 5432) as (proxy, url):
        env = {"COLLAB_DATABASE_URL": url, "COLLAB_JWT_SECRET": TEST_SECRET}
        async with (
            running_node(env, node_id="outage") as node,
            aiohttp.ClientSession(base_url=node.url) as http,
        ):
            assert (await call(http, "GET", "/readyz"))[0] == 200
            status, data = await call(http, "POST", "/api/auth/login", LOGIN)
            assert status == 401, data  # the route reached the database

            await proxy.set_mode(mode)
            status, data = await call(http, "GET", "/readyz")
            assert status == 503
            assert_error_shape(data)
            assert data["checks"]["database"] is False
            status, data = await call(http, "POST", "/api/auth/login", LOGIN)
            assert status == 503, data
            assert_error_shape(data)
            assert "Traceback" not in json.dumps(data)

            await proxy.set_mode(ProxyMode.PASS)
            ready = await eventually(http, "GET", "/readyz", 200)
            assert ready["checks"]["database"] is True
            await eventually(http, "POST", "/api/auth/login", 401, LOGIN)
            assert node.running


@pytest.mark.postgres
@pytest.mark.redis
async def test_redis_outage_makes_the_node_unready_until_it_returns(
    postgres_url: str, redis_url: str
) -> None:
    async with proxied(redis_url, 6379) as (proxy, url):
        env = {
            "COLLAB_DATABASE_URL": postgres_url,
            "COLLAB_REDIS_URL": url,
            "COLLAB_JWT_SECRET": TEST_SECRET,
        }
        async with (
            running_node(env, node_id="redis-outage") as node,
            aiohttp.ClientSession(base_url=node.url) as http,
        ):
            ready = await eventually(http, "GET", "/readyz", 200)
            assert ready["checks"] == {**ready["checks"], "database": True, "redis": True}

            await proxy.set_mode(ProxyMode.RESET)
            status, data = await call(http, "GET", "/readyz")
            assert status == 503
            assert_error_shape(data)
            assert data["checks"]["redis"] is False
            assert data["checks"]["database"] is True

            await proxy.set_mode(ProxyMode.PASS)
            await eventually(http, "GET", "/readyz", 200)
            assert node.running


# --- real processes: graceful shutdown ----------------------------------------------------

SHUTDOWN_LIMIT = 10.0


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def _exits_cleanly(node: RunningNode, since: float) -> None:
    remaining = SHUTDOWN_LIMIT - (time.monotonic() - since)
    try:
        async with asyncio.timeout(max(remaining, 0.1)):
            code = await node.wait()
    except TimeoutError:
        pytest.fail(f"not exited {SHUTDOWN_LIMIT}s after SIGTERM\n{node.log_tail()}")
    assert code == 0, node.log_tail()
    assert await _refused(node.port)


async def test_sigterm_on_an_idle_node_exits_zero(tmp_path: Any) -> None:
    async with running_node({"COLLAB_JWT_SECRET": TEST_SECRET}, workdir=tmp_path) as node:
        node.process.send_signal(signal.SIGTERM)
        await _exits_cleanly(node, time.monotonic())


async def test_sigterm_lets_in_flight_requests_finish(tmp_path: Any) -> None:
    """Registrations hash passwords (slow on purpose), so a burst of them is still
    in flight when SIGTERM arrives: each gets its full answer, the node stops
    accepting connections at once, and it exits 0 within the limit."""

    async def register(http: aiohttp.ClientSession, i: int) -> tuple[int, Any]:
        account = {"email": f"u{i}@example.com", "password": "password-123", "display_name": "U"}
        return await call(http, "POST", "/api/auth/register", account)

    async with (
        running_node({"COLLAB_JWT_SECRET": TEST_SECRET}, workdir=tmp_path) as node,
        aiohttp.ClientSession(base_url=node.url) as http,
    ):
        # Fewer than the per-address registration limit, so none is a 429.
        tasks = [asyncio.create_task(register(http, i)) for i in range(6)]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        signalled = time.monotonic()
        node.process.send_signal(signal.SIGTERM)
        assert not all(task.done() for task in tasks), "the burst was not in flight"
        await _eventually_refused(node.port)

        results = await asyncio.gather(*tasks)
        assert [status for status, _ in results] == [201] * len(tasks), results
        assert all(data["access_token"] for _, data in results)
        await _exits_cleanly(node, signalled)


async def _eventually_refused(port: int) -> None:
    async with asyncio.timeout(3):
        for _ in itertools.count():
            if await _refused(port):
                return
            await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_sigterm_while_the_database_hangs_still_exits(postgres_url: str) -> None:
    """A readiness probe stuck on a black-holed database is answered (503) within
    its bound, and closing the hung pool does not hold the exit."""
    async with proxied(postgres_url, 5432) as (proxy, url):
        # The job reaper's periodic query is kept out of the hang (see below).
        env = {
            "COLLAB_DATABASE_URL": url,
            "COLLAB_JWT_SECRET": TEST_SECRET,
            "COLLAB_JOB_REAP_SECONDS": "3600",
        }
        async with (
            running_node(env, node_id="hung-db") as node,
            aiohttp.ClientSession(base_url=node.url) as http,
        ):
            # The reaper sweeps once right after start-up; let that finish, so this
            # test is about the probe and the pool (the next test covers the sweep).
            await asyncio.sleep(1.0)
            await proxy.set_mode(ProxyMode.BLACKHOLE)
            started = time.monotonic()
            probe = asyncio.create_task(call(http, "GET", "/readyz"))
            await asyncio.sleep(0.5)
            signalled = time.monotonic()
            node.process.send_signal(signal.SIGTERM)
            status, data = await probe
            assert status == 503
            assert_error_shape(data)
            assert time.monotonic() - started < 4.0, "readiness must answer promptly"
            await _exits_cleanly(node, signalled)


@pytest.mark.postgres
async def test_sigterm_while_a_background_query_hangs_still_exits(postgres_url: str) -> None:
    """The job reaper's sweep is stuck in a transaction on a black-holed database
    when SIGTERM comes: its stop is bounded and the connection dropped, not rolled
    back, so the node still exits in time."""
    async with proxied(postgres_url, 5432) as (proxy, url):
        env = {
            "COLLAB_DATABASE_URL": url,
            "COLLAB_JWT_SECRET": TEST_SECRET,
            "COLLAB_JOB_REAP_SECONDS": "0.2",
        }
        async with running_node(env, node_id="hung-sweep") as node:
            await proxy.set_mode(ProxyMode.BLACKHOLE)
            await asyncio.sleep(1.0)  # a reaper sweep is now stuck on the database
            signalled = time.monotonic()
            node.process.send_signal(signal.SIGTERM)
            await _exits_cleanly(node, signalled)
