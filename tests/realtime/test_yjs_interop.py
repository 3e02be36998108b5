"""Real JavaScript Yjs clients (npm yjs + y-websocket) against the server.

Convergence is checked three ways: every client shows the same text, the REST
content equals it, and the event log rebuilt with pycrdt and with the
JavaScript Yjs (pycrdt can diverge from Yjs on out-of-order input) equals it.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from eventstore.eventlog import EventLog
from eventstore.keys import DATABASE
from eventstore.replay import document_text
from tests.conftest import Client
from tests.realtime.seed import Seeded
from tests.support.yjs import YjsClients, node_available, replay_log_with_yjs

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(90),
]


def ws_base(client: Client) -> str:
    return str(client.make_url("/ws")).replace("http://", "ws://")


async def assert_log_matches(client: Client, seeded: Seeded, expected: str) -> None:
    """REST content, pycrdt replay and Yjs replay of the log all equal ``expected``."""
    response = await client.get(
        f"/api/documents/{seeded.doc_id}/content",
        headers={"Authorization": f"Bearer {seeded.tokens['owner']}"},
    )
    assert response.status == 200
    assert (await response.json())["text"] == expected
    db = client.app[DATABASE]
    await asyncio.sleep(0)  # let the room finish any commit in flight
    _, from_pycrdt = await document_text(db, seeded.doc_id)
    events = await EventLog(db).read(seeded.doc_id)
    from_yjs = await replay_log_with_yjs([e.update for e in events])
    assert from_pycrdt == expected
    assert from_yjs.text == expected and not from_yjs.pending


@pytest.mark.parametrize("count", [2, 10])
async def test_concurrent_clients_converge(client: Client, seeded: Seeded, count: int) -> None:
    names = [("owner" if i % 2 else "editor") for i in range(count)]
    async with YjsClients() as yjs:
        for i, name in enumerate(names):
            result = await yjs.connect(f"c{i}", ws_base(client), seeded.doc_id, seeded.tokens[name])
            assert result.synced, result
        await asyncio.gather(
            *(yjs.random_edits(f"c{i}", 40, seed=i, interval_ms=2) for i in range(count))
        )
        text = await yjs.wait_converged([f"c{i}" for i in range(count)], within=20)
    assert len(text) > 0
    await assert_log_matches(client, seeded, text)


async def test_offline_edits_merge_on_reconnect(client: Client, seeded: Seeded) -> None:
    async with YjsClients() as yjs:
        await yjs.connect("a", ws_base(client), seeded.doc_id, seeded.tokens["owner"])
        await yjs.connect("b", ws_base(client), seeded.doc_id, seeded.tokens["editor"])
        await yjs.insert("a", 0, "shared line\n")
        await yjs.wait_text("b", "shared line\n")
        await yjs.disconnect("a")
        # Both edit the same positions while A is offline.
        await yjs.insert("a", 0, "A-offline ")
        await yjs.delete("a", 10, 6)
        await yjs.insert("b", 0, "B-online ")
        await yjs.delete("b", 9, 7)
        await yjs.insert("b", 5, "!")
        await yjs.reconnect("a")
        text = await yjs.wait_converged(["a", "b"], within=10)
    assert "A-offline" in text and "B-on" in text
    await assert_log_matches(client, seeded, text)


async def test_viewer_sees_everything_but_cannot_write(client: Client, seeded: Seeded) -> None:
    async with YjsClients() as yjs:
        await yjs.connect("v", ws_base(client), seeded.doc_id, seeded.tokens["viewer"])
        await yjs.connect("e", ws_base(client), seeded.doc_id, seeded.tokens["editor"])
        await yjs.insert("e", 0, "from editor")
        await yjs.wait_text("v", "from editor")
        await yjs.insert("v", 0, "from viewer ")
        await asyncio.sleep(0.2)
        assert await yjs.text("e") == "from editor"
    await assert_log_matches(client, seeded, "from editor")


async def test_close_codes_reach_the_stock_client(client: Client, seeded: Seeded) -> None:
    async with YjsClients() as yjs:
        bad = await yjs.connect("x", ws_base(client), seeded.doc_id, "not-a-token")
        stranger = await yjs.connect("s", ws_base(client), seeded.doc_id, seeded.tokens["stranger"])
    assert bad.close_code == 4401 and not bad.synced
    assert stranger.close_code == 4404 and not stranger.synced
