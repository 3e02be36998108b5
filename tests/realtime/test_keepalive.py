"""A lone stock y-websocket client on a quiet document keeps its one connection.

The stock client closes a link on which nothing arrived for 30 seconds (a
constant in y-websocket, not configurable) and renews its own awareness every
15 seconds; the server echoes that renewal back, so the link never goes
silent. The wait below therefore has to outlast the client's 30 seconds.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from collab.realtime.protocol import AwarenessMessage, decode_awareness, decode_message
from tests.conftest import Client
from tests.realtime.pyclient import PyClient, connect
from tests.realtime.seed import Seeded
from tests.support.yjs import YjsClients, node_available

pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(
        not node_available() and os.environ.get("CI") != "true", reason="needs node and npm"
    ),
    pytest.mark.timeout(120),
]

# The client's silence limit is 30 s and it checks every 3 s.
CLIENT_SILENCE_LIMIT = 30.0
QUIET_FOR = CLIENT_SILENCE_LIMIT + 8.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Keep-alive does not depend on the backend: one run on SQLite is enough."""
    return f"sqlite:///{tmp_path}/collab.db"


def ws_base(client: Client) -> str:
    return str(client.make_url("/ws")).replace("http://", "ws://")


async def test_lone_quiet_client_is_never_dropped(client: Client, seeded: Seeded) -> None:
    async with YjsClients() as yjs:
        result = await yjs.connect(
            "lone", ws_base(client), seeded.doc_id, seeded.tokens["editor"], keep_trying=True
        )
        assert result.synced, result
        await asyncio.sleep(QUIET_FOR)
        status = await yjs.status("lone")
    assert status.connected and status.synced, status
    assert status.attempts == 1, status
    assert status.close_count == 0, status


async def test_awareness_renewal_is_echoed_to_its_sender(client: Client, seeded: Seeded) -> None:
    url = f"/ws/{seeded.doc_id}?token={seeded.tokens['editor']}"
    async with connect(client, url, client_id=7) as lone:
        for clock in (1, 2, 3):  # the first announcement, then two renewals
            await lone.set_presence({"cursor": 0}, clock=clock)
            await lone.wait_for(lambda c=clock: _echoed_clock(lone) == c)
        assert lone.presence[7] == {
            "cursor": 0,
            "user": {"id": seeded.users["editor"].id, "name": "Editor"},
        }


def _echoed_clock(lone: PyClient) -> int:
    clocks = [
        entry.clock
        for data in lone.received
        if isinstance(message := decode_message(data), AwarenessMessage)
        for entry in decode_awareness(message.payload)
        if entry.client_id == 7
    ]
    return max(clocks, default=0)
