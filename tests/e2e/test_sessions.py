"""How the demo authenticates its WebSocket, in headless Chromium.

With a server that keeps the session in an HttpOnly cookie (and says so in the
login answer), the page connects without a token in the URL; with one that
does not, it falls back to ``?token=``. Either way it refreshes the session
before the access token expires, so a reconnect never presents a stale one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Response, WebSocket

from tests.e2e.people import (
    PASSWORD,
    SECRET,
    WAIT_MS,
    SharedDocument,
    expect,
    wait_connected,
)
from tests.support.nodes import RunningNode, running_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ACCESS_TOKEN_TTL = 8


@pytest.fixture
async def short_lived_node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    """A node whose access tokens expire after a few seconds."""
    env = {
        "COLLAB_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "COLLAB_JWT_SECRET": SECRET,
        "COLLAB_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL),
    }
    async with running_node(env, workdir=tmp_path / "node") as running:
        yield running


async def sets_session_cookie(http: aiohttp.ClientSession, node: RunningNode) -> bool:
    """Whether logging in sets the ``collab_session`` cookie on this server."""
    body = {"email": "alice@example.com", "password": PASSWORD}
    async with http.post(f"{node.url}/api/auth/login", json=body) as response:
        assert response.status == 200, await response.text()
        if "collab_session" not in response.cookies:
            return False
        # The page learns that the cookie exists from this flag (it cannot
        # read an HttpOnly cookie).
        assert (await response.json()).get("session_cookie") is True
        return True


async def test_session_is_refreshed_before_the_token_expires(
    browser: Browser, short_lived_node: RunningNode
) -> None:
    node = short_lived_node
    async with aiohttp.ClientSession() as http:
        shared = await SharedDocument.create(http, node)
        cookie = await sets_session_cookie(http, node)
    refreshed: list[Response] = []
    refused: list[str] = []
    sockets: list[str] = []

    def on_response(response: Response) -> None:
        if response.url.endswith("/api/auth/refresh"):
            refreshed.append(response)
        if response.status == 401:
            refused.append(response.url)

    def on_socket(socket: WebSocket) -> None:
        sockets.append(socket.url)

    alice = await shared.open_as(browser, "alice@example.com", "Alice")
    alice.page.on("response", on_response)
    alice.page.on("websocket", on_socket)
    # Two refreshes: the token the page signed in with has long expired.
    async with alice.page.expect_response("**/api/auth/refresh", timeout=WAIT_MS):
        pass
    async with alice.page.expect_response("**/api/auth/refresh", timeout=WAIT_MS):
        pass
    assert all(r.status == 200 for r in refreshed)

    # A reconnect now presents the fresh session, not the expired one.
    await alice.context.set_offline(True)
    await expect(alice.page.locator("#conn")).to_have_attribute("data-state", "offline")
    await alice.context.set_offline(False)
    await wait_connected(alice)
    assert sockets, "the page never reconnected"
    assert ("token=" in sockets[-1]) is not cookie
    assert refused == []
    assert alice.errors == []


async def test_socket_carries_a_token_only_without_the_cookie(
    browser: Browser, node: RunningNode
) -> None:
    async with aiohttp.ClientSession() as http:
        shared = await SharedDocument.create(http, node)
        cookie = await sets_session_cookie(http, node)
    context = await browser.new_context()
    page = await context.new_page()
    async with page.expect_websocket(timeout=WAIT_MS) as opened:
        await page.goto(shared.url)
        form = page.locator("#login-form")
        await form.get_by_label("Email").fill("alice@example.com")
        await form.get_by_label("Password").fill(PASSWORD)
        await form.get_by_role("button", name="Sign in").click()
    socket = await opened.value
    await expect(page.locator("#conn")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    if cookie:
        assert "token=" not in socket.url
    else:
        # This server keeps no session cookie: the page falls back to the URL.
        assert "token=" in socket.url
