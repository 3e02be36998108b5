"""Which routes the auth middleware lets through without a token."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pytest_aiohttp import AiohttpClient

from auth.keys import TOKEN_SIGNER
from auth.middleware import auth_middleware, public
from auth.tokens import TokenSigner
from tests.auth.fixtures import Client, assert_error
from tests.conftest import TEST_SECRET
from webcore.middlewares import error_middleware


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@public
async def _public_ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _mini_client(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    (tmp_path / "app.js").write_text("console.log(1)")
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[TOKEN_SIGNER] = TokenSigner(TEST_SECRET, access_ttl=60, refresh_ttl=60)
    for path in ("/", "/healthz", "/readyz", "/metrics", "/ws/{doc_id}", "/api/docs/x"):
        app.router.add_get(path, _ok)
    app.router.add_get("/api/private", _ok)
    app.router.add_get("/api/docsx", _ok)  # not under /api/docs: a sibling, not the docs tree
    app.router.add_post("/api/open", _public_ok)
    app.router.add_static("/static", tmp_path)
    return await aiohttp_client(app)


async def test_public_routes_need_no_token(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await _mini_client(aiohttp_client, tmp_path)
    for path in ("/", "/healthz", "/readyz", "/metrics", "/ws/some-doc", "/api/docs/x"):
        assert (await client.get(path)).status == 200, path
    assert (await client.post("/api/open")).status == 200
    assert (await client.get("/static/app.js")).status == 200


async def test_everything_else_needs_a_token(tmp_path: Path, aiohttp_client: AiohttpClient) -> None:
    client = await _mini_client(aiohttp_client, tmp_path)
    for path in ("/api/private", "/api/docsx"):
        response = await client.get(path)
        await assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="collab"'
    bad = await client.get("/api/private", headers={"Authorization": "Bearer nope"})
    await assert_error(bad, 401, "unauthorized")
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]


async def test_unknown_routes_are_404_not_401(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    client = await _mini_client(aiohttp_client, tmp_path)
    await assert_error(await client.get("/api/nothing-here"), 404)
    await assert_error(await client.delete("/api/private"), 405)


async def test_the_real_apps_operational_routes_are_public(client: Client) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/api/docs", "/api/docs/openapi.json"):
        response = await client.get(path)
        assert response.status == 200, path
