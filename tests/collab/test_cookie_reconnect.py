"""A stock Yjs client on the session cookie survives a restart past its token's expiry.

The y-websocket client keeps its URL, so a ``?token=`` client is stranded with
4401 once its token expired. A browser on the cookie renews the cookie with
``POST /api/auth/refresh`` (empty body) and reconnects with it.
"""

from __future__ import annotations

import asyncio
import os
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pytest

from auth.cookies import REFRESH_COOKIE, SESSION_COOKIE
from tests.auth.fixtures import PASSWORD, unique_email
from tests.conftest import TEST_SECRET
from tests.support.nodes import RunningNode, running_node
from tests.support.yjs import YjsClients, node_available

pytestmark = [
    pytest.mark.node,
    pytest.mark.slow,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(120),
]


def _set_cookies(response: aiohttp.ClientResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


async def _post(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], json: object = None
) -> tuple[dict[str, object], dict[str, str]]:
    async with http.post(url, json=json, headers=headers) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json(), _set_cookies(response)


async def _wait_expired(http: aiohttp.ClientSession, node: RunningNode, session: str) -> None:
    headers = {"Cookie": f"{SESSION_COOKIE}={session}"}
    async with asyncio.timeout(30):
        while True:
            async with http.get(f"{node.url}/api/auth/me", headers=headers) as response:
                if response.status == 401:
                    return
            await asyncio.sleep(0.5)


async def test_cookie_client_reconnects_after_restart_past_expiry(tmp_path: Path) -> None:
    env = {
        "COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/collab.db",
        "COLLAB_JWT_SECRET": TEST_SECRET,
        "COLLAB_ACCESS_TOKEN_TTL": "1",
    }
    async with (
        running_node(env, workdir=tmp_path / "node") as node,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        YjsClients() as yjs,
    ):
        origin = {"Origin": node.url}
        body, cookies = await _post(
            http,
            f"{node.url}/api/auth/register",
            origin,
            {"email": unique_email(), "password": PASSWORD, "display_name": "Ada"},
        )
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        project, _ = await _post(http, f"{node.url}/api/projects", bearer, {"name": "p"})
        doc, _ = await _post(
            http,
            f"{node.url}/api/projects/{project['id']}/documents",
            bearer,
            {"name": "main.py", "language": "python"},
        )
        browser = {"Cookie": f"{SESSION_COOKIE}={cookies[SESSION_COOKIE]}", **origin}
        first = await yjs.connect("page", node.ws_url, str(doc["id"]), headers=browser)
        assert first.synced, first
        await yjs.insert("page", 0, "before restart")
        await asyncio.sleep(0.3)  # let the group commit land before the stop

        await node.stop()
        await yjs.disconnect("page")
        await node.start()
        await _wait_expired(http, node, cookies[SESSION_COOKIE])

        stranded = await yjs.reconnect("page")
        assert not stranded.synced and stranded.close_code == 4401

        refresh_headers = {"Cookie": f"{REFRESH_COOKIE}={cookies[REFRESH_COOKIE]}", **origin}
        _, renewed = await _post(http, f"{node.url}/api/auth/refresh", refresh_headers)
        await yjs.set_headers(
            "page", {"Cookie": f"{SESSION_COOKIE}={renewed[SESSION_COOKIE]}", **origin}
        )
        again = await yjs.reconnect("page")
        assert again.synced, again
        await yjs.insert("page", len("before restart"), ", after")
        check = await yjs.connect(
            "check", node.ws_url, str(doc["id"]), token=renewed[SESSION_COOKIE]
        )
        assert check.synced
        await yjs.wait_text("check", "before restart, after")


async def test_cookie_upgrade_from_a_foreign_origin_is_refused(tmp_path: Path) -> None:
    env = {
        "COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/collab.db",
        "COLLAB_JWT_SECRET": TEST_SECRET,
    }
    async with (
        running_node(env, workdir=tmp_path / "node") as node,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        YjsClients() as yjs,
    ):
        body, cookies = await _post(
            http,
            f"{node.url}/api/auth/register",
            {},
            {"email": unique_email(), "password": PASSWORD, "display_name": "Ada"},
        )
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        project, _ = await _post(http, f"{node.url}/api/projects", bearer, {"name": "p"})
        doc, _ = await _post(
            http,
            f"{node.url}/api/projects/{project['id']}/documents",
            bearer,
            {"name": "main.py", "language": "python"},
        )
        hijack = {
            "Cookie": f"{SESSION_COOKIE}={cookies[SESSION_COOKIE]}",
            "Origin": "https://evil.example",
        }
        result = await yjs.connect("evil", node.ws_url, str(doc["id"]), headers=hijack)
        assert not result.synced and result.close_code == 4403
