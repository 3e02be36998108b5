"""A Python program joins a document with pycrdt's Provider, next to a stock Yjs client.

This is what docs/clients.md shows: ``httpx_ws.aconnect_ws`` for the
WebSocket, ``pycrdt.websocket.websocket.HttpxWebsocket`` as the channel and
``pycrdt.Provider`` for the y-websocket sync, with the token in the URL.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest
from aiohttp import DummyCookieJar
from httpx_ws import aconnect_ws
from pycrdt import Doc, Provider, Text
from pycrdt.websocket.websocket import HttpxWebsocket
from pytest_aiohttp import AiohttpClient

from collab.app import create_app
from collab.config import Settings
from eventstore.crdt import TEXT_NAME
from tests.auth.fixtures import Client, create_account, create_document, create_project
from tests.conftest import TEST_SECRET
from tests.support.yjs import YjsClients, node_available

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(60),
]


@pytest.fixture
async def node(tmp_path: Path, aiohttp_client: AiohttpClient) -> Client:
    """One node on SQLite."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/collab.db",
        jwt_secret=TEST_SECRET,
        data_dir=tmp_path / "data",
        room_grace_seconds=0.2,
    )
    return await aiohttp_client(create_app(settings), cookie_jar=DummyCookieJar())


async def _wait_text(text: Text, expected: str, within: float = 10.0) -> None:
    changed = asyncio.Event()
    subscription = text.observe(lambda _event: changed.set())
    try:
        async with asyncio.timeout(within):
            while str(text) != expected:
                await changed.wait()
                changed.clear()
    finally:
        text.unobserve(subscription)


async def test_python_provider_and_yjs_edit_together(node: Client) -> None:
    account = await create_account(node)
    project_id = await create_project(node, account)
    doc_id = await create_document(node, account, project_id)
    base = f"{node.server.host}:{node.server.port}"
    # Yjs keeps client ids in 32 bits; pycrdt's default may be larger.
    doc: Doc[Text] = Doc(client_id=random.getrandbits(32))
    text = doc.get(TEXT_NAME, type=Text)
    url = f"http://{base}/ws/{doc_id}?token={account.access_token}"
    async with YjsClients() as yjs:
        joined = await yjs.connect("js", f"ws://{base}/ws", doc_id, account.access_token)
        assert joined.synced
        async with (
            aconnect_ws(url) as websocket,  # type: ignore[var-annotated]
            Provider(doc, HttpxWebsocket(websocket, doc_id)) as provider,
        ):
            async with asyncio.timeout(10):
                await provider.synced.wait()
            text += "from python"
            await yjs.wait_text("js", "from python")
            await yjs.insert("js", 0, "JS says: ")
            await _wait_text(text, "JS says: from python")
            await asyncio.sleep(0.2)  # let the last update reach the server's log
    content = await node.get(f"/api/documents/{doc_id}/content", headers=account.headers)
    assert (await content.json())["text"] == "JS says: from python"
