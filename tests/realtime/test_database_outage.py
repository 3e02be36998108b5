"""The database goes away under an open document and comes back.

A commit that fails leaves the in-memory document ahead of the log, so the
room is dropped and its peers closed; the stock client reconnects, sends
what the log lacks, and nothing typed is lost.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pytest_aiohttp import AiohttpClient

from auth.access import Role
from collab.app import create_app
from collab.config import Settings
from eventstore.keys import DATABASE
from eventstore.replay import document_text
from tests.conftest import TEST_SECRET
from tests.realtime.seed import seed
from tests.support.tcpproxy import ProxyMode, TcpProxy
from tests.support.yjs import YjsClients, node_available

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.node,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(90),
]


async def test_edits_survive_a_database_outage(
    postgres_url: str, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    parts = urlsplit(postgres_url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = postgres_url.replace(f":{parts.port}", f":{proxy.port}", 1)
        settings = Settings(database_url=proxied, jwt_secret=TEST_SECRET, data_dir=tmp_path)
        app = create_app(settings)
        client = await aiohttp_client(app)
        seeded = await seed(app, {"a": Role.OWNER, "b": Role.EDITOR})
        base = str(client.make_url("/ws")).replace("http://", "ws://")
        async with YjsClients() as yjs:
            await yjs.connect("a", base, seeded.doc_id, seeded.tokens["a"])
            await yjs.connect("b", base, seeded.doc_id, seeded.tokens["b"])
            await yjs.insert("a", 0, "saved. ")
            await yjs.wait_text("b", "saved. ")
            await proxy.set_mode(ProxyMode.RESET)
            await yjs.insert("a", 7, "typed while the database was down. ")
            await asyncio.sleep(1.0)
            response = await client.get(
                f"/api/documents/{seeded.doc_id}/content",
                headers={"Authorization": f"Bearer {seeded.tokens['a']}"},
            )
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "database_unavailable"
            await proxy.set_mode(ProxyMode.PASS)
            text = await yjs.wait_converged(["a", "b"], within=30)
        assert text == "saved. typed while the database was down. "
        _, logged = await document_text(app[DATABASE], seeded.doc_id)
        assert logged == text
