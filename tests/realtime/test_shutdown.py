"""SIGTERM: the node commits what is pending, snapshots open documents, and
closes every socket with 1012 so clients reconnect elsewhere."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from auth.access import Role
from auth.tokens import TokenSigner
from eventstore import apply_migrations, open_database
from eventstore.eventlog import EventLog
from eventstore.replay import document_text
from tests.conftest import TEST_SECRET
from tests.realtime.pyclient import connect
from tests.realtime.seed import Seeded, seed_database
from tests.support.nodes import running_node


@pytest.mark.slow
async def test_sigterm_flushes_snapshots_and_closes_with_1012(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/node.db"
    async with open_database(database) as db:
        await apply_migrations(db)
        signer = TokenSigner(TEST_SECRET, access_ttl=3600, refresh_ttl=3600)
        seeded = await seed_database(db, signer, {"owner": Role.OWNER})
    env = {"COLLAB_DATABASE_URL": database, "COLLAB_JWT_SECRET": TEST_SECRET}
    async with (
        running_node(env, workdir=tmp_path / "node") as node,
        aiohttp.ClientSession() as http,
    ):
        path = f"{node.ws_url}/{seeded.doc_id}?token={seeded.tokens['owner']}"
        async with connect(http, path, client_id=1) as c:
            for word in ("one ", "two ", "three"):
                c.text += word
            # Only signal once the edits have reached the server, so the
            # client is not still writing when the node closes the socket.
            await _wait_for_content(http, node.url, seeded, "one two three")
            started = time.perf_counter()
            node.process.send_signal(signal.SIGTERM)
            assert await c.wait_closed(within=10) == 1012
            assert await node.wait() == 0
            assert time.perf_counter() - started < 10
    async with open_database(database) as db:
        head, text = await document_text(db, seeded.doc_id)
        snapshot = await EventLog(db).latest_snapshot(seeded.doc_id)
    assert text == "one two three"
    assert snapshot is not None
    assert snapshot.seq == head


async def _wait_for_content(
    http: aiohttp.ClientSession, base: str, seeded: Seeded, expected: str
) -> None:
    headers = {"Authorization": f"Bearer {seeded.tokens['owner']}"}
    async with asyncio.timeout(10):
        while True:
            async with http.get(
                f"{base}/api/documents/{seeded.doc_id}/content", headers=headers
            ) as r:
                if (await r.json())["text"] == expected:
                    return
            await asyncio.sleep(0.02)
