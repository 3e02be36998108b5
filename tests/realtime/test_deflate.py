"""permessage-deflate is declined: a browser-like client offering it gets a plain link."""

from __future__ import annotations

from tests.conftest import Client
from tests.realtime.pyclient import PyClient
from tests.realtime.seed import Seeded, ws_path


async def test_deflate_offer_is_declined(client: Client, seeded: Seeded) -> None:
    # compress=15 sends "Sec-WebSocket-Extensions: permessage-deflate", as browsers do.
    ws = await client.ws_connect(ws_path(seeded, "editor"), compress=15)
    try:
        assert ws.compress == 0
        assert "Sec-WebSocket-Extensions" not in ws._response.headers
        peer = PyClient(ws, client_id=3)
        await peer.start()
        peer.text += "still works"
        await peer.synced.wait()
    finally:
        await ws.close()


async def test_declined_deflate_still_syncs_with_a_plain_client(
    client: Client, seeded: Seeded
) -> None:
    offered = await client.ws_connect(ws_path(seeded, "editor"), compress=15)
    plain = await client.ws_connect(ws_path(seeded, "owner"))
    try:
        a, b = PyClient(offered, client_id=4), PyClient(plain, client_id=5)
        await a.start()
        await b.start()
        await a.synced.wait()
        await b.synced.wait()
        a.text += "over an uncompressed link"
        await b.wait_text("over an uncompressed link")
    finally:
        await offered.close()
        await plain.close()
